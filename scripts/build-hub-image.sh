#!/usr/bin/env bash
# Builds the hub image, which the Helm chart (deploy/helm/labhub) runs as the hub and as the proxy, from this
# checkout alone, and with --push pushes it; usage below, docs/kubernetes.md. scripts/setup-datalab.sh builds the
# test environment's labhub/hub with the same function, build_hub_image (scripts/lib/app-image.sh).
# Idempotent: a tag that already holds a build of the same sources, Dockerfile and base image is left as it is.
set -euo pipefail

START=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKER=docker
DEFAULT_BASE=node:20-bookworm-slim

did=()
log() { echo "build-hub-image: $*"; }
die() { echo "build-hub-image: ERROR: $*" >&2; exit 1; }
usage_error() { printf 'build-hub-image: %s\nRun %s --help for usage.\n' "$1" "$0" >&2; exit 2; }

# shellcheck source=lib/image-build.sh
. "$REPO/scripts/lib/image-build.sh"
# shellcheck source=lib/app-image.sh
. "$REPO/scripts/lib/app-image.sh"

usage() {
  cat <<EOF
Usage: $0 [--tag IMAGE:TAG] [--base IMAGE] [--push]

Builds LabHub's hub image from this checkout: the compiled hub, templates/ and production node_modules on a
Node.js 20 base image. The Helm chart runs it as the hub and as the proxy. It is checked to run as the chart runs
it (uid 1000, read-only root file system) before it is kept or pushed.

  --tag IMAGE:TAG  the image to build (default labhub/hub:$(chart_app_version), the chart's default image);
                   use a new tag for each build
  --base IMAGE     the Node.js 20 image on glibc to build on (default $DEFAULT_BASE), pulled if missing
  --push           docker push IMAGE:TAG after the build (needs --tag naming your registry, and docker login)
  -h, --help       this help

Needs Linux, Docker, and Node.js 20 with npm: the hub is compiled here, and node_modules (npm ci here when
missing) holds native addons built on this machine, so build on the cluster nodes' CPU architecture, on a C
library no newer than the base image's.
EOF
}

# An image reference as docker takes it: [registry[:port]/]path, path components in lower case.
NAME_RE='([A-Za-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*'
TAG_RE=':[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}'

TAG='' BASE=$DEFAULT_BASE PUSH=0
while [ $# -gt 0 ]; do
  case $1 in --tag=* | --base=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac
  case $1 in
    -h | --help) usage; exit 0 ;;
    --push) PUSH=1 ;;
    --tag | --base)
      [ $# -ge 2 ] || usage_error "$1 needs a value"
      if [ "$1" = --tag ]; then TAG=$2; else BASE=$2; fi
      shift ;;
    *) usage_error "unknown option $1" ;;
  esac
  shift
done
if [ -n "$TAG" ]; then
  [[ $TAG =~ ^$NAME_RE$TAG_RE$ ]] ||
    usage_error "--tag takes IMAGE:TAG, such as registry.example.org/lab/labhub-hub:2026-12-05, not '$TAG'"
elif [ "$PUSH" = 1 ]; then
  usage_error "--push needs --tag naming your registry (the default tag would go to Docker Hub)"
else
  TAG=labhub/hub:$(chart_app_version)
fi
[[ $BASE =~ ^$NAME_RE($TAG_RE)?(@sha256:[0-9a-f]{64})?$ ]] || usage_error "--base takes an image, not '$BASE'"

command -v npm >/dev/null 2>&1 || die "npm is missing: the hub is compiled with Node.js 20 and npm"
"$DOCKER" info >/dev/null 2>&1 || die "no Docker engine answers ($DOCKER info failed)"
WORK=$(mktemp -d /var/tmp/labhub-hub-image.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

if ! "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
  log "pulling $BASE"
  "$DOCKER" pull "$BASE" >"$WORK/pull.log" 2>&1 || { tail -n 20 "$WORK/pull.log" >&2; die "docker pull $BASE failed"; }
  did+=("pulled $BASE")
fi

log "$TAG from $REPO on $BASE"
build_hub_image "$TAG" "$BASE" "$WORK/stage" "$WORK/build.log"
[ "$IMAGES_BUILT" = 1 ] || log "$TAG is up to date"

if [ "$PUSH" = 1 ]; then
  log "pushing $TAG"
  "$DOCKER" push "$TAG" >"$WORK/push.log" 2>&1 || { tail -n 20 "$WORK/push.log" >&2; die "docker push $TAG failed"; }
  did+=("pushed $TAG ($(grep -o 'digest: sha256:[0-9a-f]*' "$WORK/push.log" | tail -n 1))")
fi

[ ${#did[@]} -gt 0 ] || did=("nothing to do")
log "did: $(printf '%s; ' "${did[@]}" | sed 's/; $//')"
log "done in $(($(date +%s) - START)) s"
echo
echo "  image  $TAG"
echo "  id     $("$DOCKER" image inspect -f '{{.Id}}' "$TAG")"
echo "  size   $(($("$DOCKER" image inspect -f '{{.Size}}' "$TAG") / 1000000)) MB"
echo
if [ "$PUSH" = 1 ]; then echo "Deploy it with the Helm chart:"; else echo "Deploy it with the Helm chart once the cluster's nodes can pull it (--push):"; fi
echo "  helm upgrade --install labhub deploy/helm/labhub -n labhub --create-namespace \\"
echo "    --set image.repository=${TAG%:*} --set image.tag=${TAG##*:}"
