# Sourced by the setup scripts: build a Docker image only when what goes into it changed. Each image carries the
# label org.labhub.build-hash, a SHA-256 of its inputs that the caller computes (files of the context, base image id).
# Needs from the caller: $DOCKER, log, die, and the array `did` (what the run did, for its summary line).

build_hash_of() { "$DOCKER" image inspect -f '{{ index .Config.Labels "org.labhub.build-hash" }}' "$1" 2>/dev/null || true; }

# The files under a directory with their SHA-256, in a stable order (Python's caches left out).
hash_dir() { (cd "$1" && find . -type f -not -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); }

# build_if_changed IMAGE DOCKERFILE CONTEXT HASH LOG [DOCKER BUILD OPTION...]: builds IMAGE when its label differs
# from HASH; sets IMAGES_BUILT=1 when it built.
IMAGES_BUILT=0
build_if_changed() {
  local image=$1 dockerfile=$2 context=$3 want=$4 logfile=$5 have why T0
  shift 5
  have=$(build_hash_of "$image")
  [ "$have" = "$want" ] && return 0
  T0=$(date +%s)
  if [ -z "$have" ]; then why="missing"; else why="inputs changed (${have:0:12} -> ${want:0:12})"; fi
  log "building $image ($why; log: $logfile)"
  "$DOCKER" build "$@" --label "org.labhub.build-hash=$want" -f "$dockerfile" -t "$image" "$context" >"$logfile" 2>&1 ||
    { tail -n 40 "$logfile" >&2; die "docker build of $image failed"; }
  did+=("built $image ($why, $(($(date +%s) - T0)) s)")
  IMAGES_BUILT=1
}

# The builds that were replaced, now untagged: only dangling images carrying the label, so only ours.
prune_replaced_builds() {
  [ "$IMAGES_BUILT" = 0 ] || "$DOCKER" image prune -f --filter "label=org.labhub.build-hash" >/dev/null 2>&1 || true
}
