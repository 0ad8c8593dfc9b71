#!/usr/bin/env bash
# The Docker side of LabHub's test environment (shared/TEST-ENV.md, "Docker engine"); called by setup-test-env.sh.
#   1. Debian's engine (docker.io), debootstrap, and docker-registry (the distribution registry 2.8, which the tests
#      start on a private port to exercise image pulls: there is no other registry here), installed if missing.
#   2. dockerd started (setsid, log in $LABHUB_DOCKERD_LOG) unless /var/run/docker.sock already answers.
#   3. labhub/debian:bookworm: a debootstrap minbase imported with `docker import` (there is no registry here),
#      built only when missing. Its apt sources are the host's (/etc/apt/sources.list.d/debian.sources).
#   4. labhub/notebook-debian:latest from images/notebook-debian/Dockerfile with images/ as the build context (it
#      copies images/python/), rebuilt when missing or when its build context (bytecode caches aside)
#      or base image changed: the image carries a label org.labhub.build-hash (SHA-256 of every file in the context
#      plus the base image id) that is compared with the current one.
# Idempotent; when everything is there it costs well under a second. Prints what it did.
set -euo pipefail

START=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE_IMAGE=labhub/debian:bookworm
NB_IMAGE=labhub/notebook-debian:latest
NB_CONTEXT="$REPO/images"
NB_DOCKERFILE="$NB_CONTEXT/notebook-debian/Dockerfile"
SOCK=/var/run/docker.sock
DOCKERD_LOG=${LABHUB_DOCKERD_LOG:-/tmp/labhub-dockerd.log}
SOURCES=/etc/apt/sources.list.d/debian.sources
export DEBIAN_FRONTEND=noninteractive
# The classic builder: the `docker` CLI found first may be newer than Debian's engine and have no buildx plugin.
export DOCKER_BUILDKIT=0

did=()
log() { echo "setup-docker: $*"; }
die() { echo "setup-docker: ERROR: $*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else log "not root and no sudo: installs will fail"; fi
fi
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

# ---------------------------------------------------------------- packages
pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]; }
missing=()
for p in docker.io debootstrap docker-registry curl; do pkg_installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  T0=$(date +%s)
  log "installing Debian packages: ${missing[*]}"
  { apt_get update -qq -o Acquire::Retries=3 &&
    apt_get install -y -qq -o Acquire::Retries=3 -o Dpkg::Use-Pty=0 "${missing[@]}"; } \
    >/tmp/labhub-apt-docker.log 2>&1 || { tail -n 40 /tmp/labhub-apt-docker.log >&2; die "apt-get install ${missing[*]} failed"; }
  did+=("apt-get install ${missing[*]} ($(($(date +%s) - T0)) s)")
fi

# Debian's client matches Debian's engine; fall back to whatever `docker` is on PATH.
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker) || die "no docker client"

# ---------------------------------------------------------------- engine
answers() { curl -sf --max-time 3 --unix-socket "$SOCK" http://localhost/_ping 2>/dev/null | grep -qx OK; }
if ! answers; then
  T0=$(date +%s)
  log "starting dockerd (log: $DOCKERD_LOG)"
  # A pid file left by a dockerd that died with its machine makes a new one refuse to start.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then "${SUDO[@]}" rm -f /var/run/docker.pid; fi
  "${SUDO[@]}" setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do answers && break; sleep 0.5; done
  answers || { tail -n 30 "$DOCKERD_LOG" >&2; die "dockerd did not answer on $SOCK within 30 s"; }
  did+=("started dockerd ($(($(date +%s) - T0)) s)")
fi

image_exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }
# shellcheck source=lib/image-build.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/image-build.sh"

# ---------------------------------------------------------------- base image
if ! image_exists "$BASE_IMAGE"; then
  T0=$(date +%s)
  [ -r "$SOURCES" ] || die "$SOURCES not found: cannot tell which Debian mirror to use"
  MIRROR=$(awk '/^URIs:/{print $2; exit}' "$SOURCES")
  [ -n "$MIRROR" ] || die "no URIs: line in $SOURCES"
  ROOT=$(mktemp -d /tmp/labhub-debootstrap.XXXXXX)
  cleanup_root() {
    # debootstrap mounts proc/sys inside the target: never follow them when deleting.
    for m in proc sys dev/pts; do mountpoint -q "$ROOT/$m" 2>/dev/null && "${SUDO[@]}" umount -l "$ROOT/$m"; done
    "${SUDO[@]}" rm -rf --one-file-system "$ROOT"
  }
  trap cleanup_root EXIT
  log "building $BASE_IMAGE: debootstrap --variant=minbase bookworm from $MIRROR"
  "${SUDO[@]}" debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >/tmp/labhub-debootstrap.log 2>&1 ||
    { tail -n 30 /tmp/labhub-debootstrap.log >&2; die "debootstrap failed"; }
  # The same sources as the host (its mirror, updates and security), in deb822 form; nothing cached.
  "${SUDO[@]}" cp "$SOURCES" "$ROOT/etc/apt/sources.list.d/debian.sources"
  "${SUDO[@]}" rm -f "$ROOT/etc/apt/sources.list"
  "${SUDO[@]}" rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb
  "${SUDO[@]}" tar --numeric-owner -C "$ROOT" -c . |
    "$DOCKER" import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' -c 'LABEL org.labhub.image=debian-bookworm' \
      -m "debootstrap minbase bookworm from $MIRROR" - "$BASE_IMAGE" >/dev/null
  cleanup_root
  trap - EXIT
  did+=("built $BASE_IMAGE ($(($(date +%s) - T0)) s)")
fi

# ---------------------------------------------------------------- notebook image
[ -f "$NB_DOCKERFILE" ] || die "$NB_DOCKERFILE not found"
BASE_ID=$("$DOCKER" image inspect -f '{{.Id}}' "$BASE_IMAGE")
build_if_changed "$NB_IMAGE" "$NB_DOCKERFILE" "$NB_CONTEXT" "$( { hash_dir "$NB_CONTEXT"; echo "$BASE_ID"; } | sha256sum | cut -d' ' -f1)" \
  /tmp/labhub-docker-build.log
prune_replaced_builds

# ---------------------------------------------------------------- summary
[ ${#did[@]} -gt 0 ] || did=("nothing to do")
log "did: $(printf '%s; ' "${did[@]}" | sed 's/; $//')"
log "engine $("$DOCKER" version -f '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo '?');" \
  "$NB_IMAGE $("$DOCKER" image inspect -f '{{.Id}}' "$NB_IMAGE" | cut -c8-19)," \
  "$(($("$DOCKER" image inspect -f '{{.Size}}' "$NB_IMAGE") / 1000000)) MB"
log "done in $(($(date +%s) - START)) s"
