#!/usr/bin/env bash
# The DataLab side of the test environment (called by setup-test-env.sh, after setup-docker.sh):
#   1. Debian packages: mosquitto (broker, dynamic-security plugin, mosquitto_ctrl), mosquitto-clients, and
#      docker-compose (1.29, Python) to check and run deploy/docker-compose.yml (the docker CLI here has no compose
#      plugin).
#   2. The lab's images, FROM labhub/debian:bookworm, with no registry:
#        labhub/node:20                 the `node` that runs this script's npm (bookworm's nodejs is 18)
#        labhub/mosquitto, labhub/postgres        images/mosquitto, images/postgres (Debian packages)
#        labhub/ferretdb                images/ferretdb with the FerretDB binary scripts/setup-credentials.sh built
#                                       ($LABHUB_FERRETDB), staged together in $STAGE/ferretdb
#        labhub/sensor-emulator, labhub/sensor-ingest, labhub/hub   this repository's compiled code and production
#                                       node_modules, staged in $STAGE (scripts/lib/app-image.sh; labhub/hub is
#                                       built as scripts/build-hub-image.sh builds it, on labhub/node:20)
#      Each carries a label org.labhub.build-hash (SHA-256 of what went into it plus its base image id) and is
#      rebuilt only when that changed.
# Idempotent; under a second when everything is there. Prints what it did.
set -euo pipefail

START=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAGE=${LABHUB_DATALAB_STAGE:-/var/tmp/labhub-datalab-build}
BASE_IMAGE=labhub/debian:bookworm
NODE_IMAGE=labhub/node:20
export DEBIAN_FRONTEND=noninteractive DOCKER_BUILDKIT=0
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)

did=()
log() { echo "setup-datalab: $*"; }
die() { echo "setup-datalab: ERROR: $*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); fi
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

# ---------------------------------------------------------------- packages
pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]; }
missing=()
for p in mosquitto mosquitto-clients docker-compose; do pkg_installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  T0=$(date +%s)
  log "installing Debian packages: ${missing[*]}"
  { apt_get update -qq -o Acquire::Retries=3 &&
    apt_get install -y -qq -o Acquire::Retries=3 -o Dpkg::Use-Pty=0 "${missing[@]}"; } \
    >/tmp/labhub-apt-datalab.log 2>&1 || { tail -n 40 /tmp/labhub-apt-datalab.log >&2; die "apt-get install ${missing[*]} failed"; }
  did+=("apt-get install ${missing[*]} ($(($(date +%s) - T0)) s)")
fi
# The package enables a broker on port 1883; the tests and the lab run their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  "${SUDO[@]}" systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi

"$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "$BASE_IMAGE missing: run scripts/setup-docker.sh first"

# ---------------------------------------------------------------- images
image_id() { "$DOCKER" image inspect -f '{{.Id}}' "$1"; }
# shellcheck source=lib/image-build.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/image-build.sh"
# shellcheck source=lib/app-image.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/app-image.sh"
build() { build_if_changed "$1" "$2" "$3" "$4" /tmp/labhub-datalab-build.log; }

BASE_ID=$(image_id "$BASE_IMAGE")
NODE_BIN=$(command -v node)
NODE_HASH=$( { "$NODE_BIN" --version; sha256sum <"$REPO/images/node/Dockerfile"; echo "$BASE_ID"; } | sha256sum | cut -d' ' -f1)
if [ "$(build_hash_of "$NODE_IMAGE")" != "$NODE_HASH" ]; then
  rm -rf "$STAGE/node" && mkdir -p "$STAGE/node"
  cp "$NODE_BIN" "$STAGE/node/node"
  build "$NODE_IMAGE" "$REPO/images/node/Dockerfile" "$STAGE/node" "$NODE_HASH"
fi

for svc in mosquitto postgres; do
  ctx="$REPO/images/$svc"
  build "labhub/$svc:latest" "$ctx/Dockerfile" "$ctx" "$( { hash_dir "$ctx"; echo "$BASE_ID"; } | sha256sum | cut -d' ' -f1)"
done

# FerretDB: the binary lives outside the repository, so it and images/ferretdb are copied into a context of their own.
FERRETDB_BIN=${LABHUB_FERRETDB:-/opt/labhub/ferretdb/ferretdb}
[ -x "$FERRETDB_BIN" ] || die "$FERRETDB_BIN missing: run scripts/setup-credentials.sh first"
FERRETDB_HASH=$( { hash_dir "$REPO/images/ferretdb"; sha256sum <"$FERRETDB_BIN"; echo "$BASE_ID"; } | sha256sum | cut -d' ' -f1)
if [ "$(build_hash_of labhub/ferretdb:latest)" != "$FERRETDB_HASH" ]; then
  rm -rf "$STAGE/ferretdb" && mkdir -p "$STAGE/ferretdb"
  cp -a "$REPO/images/ferretdb/." "$STAGE/ferretdb/"
  cp "$FERRETDB_BIN" "$STAGE/ferretdb/ferretdb"
  build labhub/ferretdb:latest "$STAGE/ferretdb/Dockerfile" "$STAGE/ferretdb" "$FERRETDB_HASH"
  rm -rf "$STAGE/ferretdb"
fi

# The app images share one staged app (scripts/lib/app-image.sh); the hub's is built by the function that
# scripts/build-hub-image.sh, which admins run, calls.
NODE_ID=$(image_id "$NODE_IMAGE")
for svc in sensor-emulator sensor-ingest; do
  want=$(app_image_hash "$REPO/images/$svc/Dockerfile" "$NODE_ID")
  [ "$(build_hash_of "labhub/$svc:latest")" = "$want" ] && continue
  stage_app "$STAGE/app" /tmp/labhub-datalab-build.log
  build "labhub/$svc:latest" "$REPO/images/$svc/Dockerfile" "$STAGE/app" "$want"
done
build_hub_image labhub/hub:latest "$NODE_IMAGE" "$STAGE/app" /tmp/labhub-datalab-build.log
# The Helm chart's default image is labhub/hub:<appVersion>: the same build, so that the chart installs unchanged on
# the test cluster (scripts/k8s-cluster.sh imports the labhub/* images).
"$DOCKER" tag labhub/hub:latest "labhub/hub:$(chart_app_version)"
prune_replaced_builds

[ ${#did[@]} -gt 0 ] || did=("nothing to do")
log "did: $(printf '%s; ' "${did[@]}" | sed 's/; $//')"
log "done in $(($(date +%s) - START)) s"
