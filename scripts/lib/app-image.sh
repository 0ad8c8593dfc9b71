# Sourced by scripts/build-hub-image.sh and scripts/setup-datalab.sh: the images that run this repository's code
# (labhub/hub, and the DataLab's labhub/sensor-emulator and labhub/sensor-ingest) copy one staged app: the compiled
# dist/, templates/ and production node_modules. Those node_modules are this machine's, native addons
# (better-sqlite3, node-linux-pam) included, so an image runs on this CPU architecture with a Node.js of the same
# major version as this machine's.
# Needs from the caller: $REPO, $DOCKER, log, die, the array `did` (what the run did), and lib/image-build.sh.

# The compiled folders the images run (dist/bench and the test helpers it imports are left out), and their sources.
APP_CODE=(hub spawners proxy authenticators datalab)
APP_SOURCES=("${APP_CODE[@]}" templates package.json package-lock.json tsconfig.json tsconfig.build.json)

# app_image_hash DOCKERFILE BASE_ID: the build hash of an app image (its sources, Dockerfile and base image).
app_image_hash() {
  { (cd "$REPO" && find "${APP_SOURCES[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    sha256sum <"$1"; echo "$2"; } | sha256sum | cut -d' ' -f1
}

# The Helm chart's default image tag.
chart_app_version() { awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "$REPO/deploy/helm/labhub/Chart.yaml"; }

# stage_app DIR LOG: the app in DIR/app, staged once per run; DIR, which holds nothing else, is the build context of
# `COPY app /opt/labhub`. LOG takes npm's output.
APP_STAGED=0
stage_app() {
  local app=$1/app logfile=$2 modules dir T0
  [ "$APP_STAGED" = 0 ] || return 0
  T0=$(date +%s)
  # On a fresh clone setup-datalab.sh runs before .ci/run's `npm ci`: compiling needs the dependencies now.
  if [ ! -f "$REPO/node_modules/.package-lock.json" ]; then
    log "installing the npm dependencies (npm ci; log: $logfile)"
    (cd "$REPO" && npm ci --no-audit --no-fund) >"$logfile" 2>&1 || { tail -n 30 "$logfile" >&2; die "npm ci failed"; }
  fi
  log "staging the app: compiling, production node_modules (log: $logfile)"
  rm -rf "$app" "$1/tsc" && mkdir -p "$app/dist"
  # Compiled beside the stage, not into the checkout's dist/, which tests may be running from. The source maps name
  # the sources where they would be in the image, as the checkout's do, rather than by a path to the checkout that
  # would differ from one stage to the next and defeat Docker's layer cache.
  (cd "$REPO" && npm run build --silent -- --outDir "$1/tsc" --sourceRoot /opt/labhub/) >"$logfile" 2>&1 ||
    { tail -n 30 "$logfile" >&2; die "npm run build failed"; }
  for dir in "${APP_CODE[@]}"; do mv "$1/tsc/$dir" "$app/dist/"; done
  rm -rf "$1/tsc"
  cp -a "$REPO/package.json" "$REPO/package-lock.json" "$REPO/templates" "$app/"
  # Hard links when the stage is on the checkout's file system and every module is readable by all (a link shares
  # its mode with the checkout's file, which is not to be changed), a copy otherwise. A node_modules that is a
  # symlink (a git worktree sharing another checkout's) is copied as what it points to: a copied link would leave
  # prune a non-directory, and it reinstalls without building the native addons.
  modules=$(readlink -f "$REPO/node_modules")
  if [ -n "$(find "$modules" \( -type d ! -perm -o=rx -o -type f ! -perm -o=r \) -print -quit)" ] ||
    ! cp -al "$modules" "$app/node_modules" 2>/dev/null; then
    rm -rf "$app/node_modules" && cp -a "$modules" "$app/node_modules"
  fi
  # prune rewrites npm's record of the tree in place: a copy of it, or the checkout's would lose its dev packages.
  # Dot entries other than that record and .bin are tools' caches (vitest's), which change from run to run.
  cp --remove-destination "$modules/.package-lock.json" "$app/node_modules/.package-lock.json"
  find "$app/node_modules" -mindepth 1 -maxdepth 1 -name '.*' ! -name .package-lock.json ! -name .bin -exec rm -rf {} +
  (cd "$app" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund) >"$logfile" 2>&1 ||
    { tail -n 30 "$logfile" >&2; die "npm prune failed"; }
  # The images run the app as uid 1000 or 65534, and COPY keeps the modes that a umask such as 027 left.
  find "$app" \( -type d ! -perm -o=rx -o -type f ! -perm -o=r \) -exec chmod a+rX {} +
  APP_STAGED=1
  did+=("staged the app ($(du -sh "$app" | cut -f1), $(($(date +%s) - T0)) s)")
}

# build_hub_image TAG BASE STAGE LOG: images/hub/Dockerfile on BASE (a Node.js 20 image on glibc), tagged TAG,
# unless TAG already holds the same build; the app is staged in STAGE when needed, LOG takes the output. A new
# build must run the way the Helm chart runs it, or it is removed (the next run would take it for up to date).
build_hub_image() {
  local tag=$1 base=$2 stage=$3 logfile=$4 dockerfile=$REPO/images/hub/Dockerfile base_id want out
  base_id=$("$DOCKER" image inspect -f '{{.Id}}' "$base" 2>/dev/null) || die "the base image $base is missing"
  want=$(app_image_hash "$dockerfile" "$base_id")
  [ "$(build_hash_of "$tag")" != "$want" ] || return 0
  stage_app "$stage" "$logfile"
  build_if_changed "$tag" "$dockerfile" "$stage" "$want" "$logfile" --build-arg "BASE=$base"
  # As the chart runs it: uid 1000, read-only root file system, LABHUB_DATA_DIR on a volume. Loading every module of
  # the hub, the spawners and brokers it loads only when configured included, finds unreadable files and native
  # addons built for another Node.js or C library than the base's; `db upgrade` writes a fresh state DB.
  local run=("$DOCKER" run --rm --network none --read-only --user 1000:1000 --tmpfs /srv/labhub
    -e LABHUB_DATA_DIR=/srv/labhub --entrypoint node "$tag")
  local load_all='for (const m of ["hub/app", "spawners/docker", "spawners/kubernetes/config", "hub/credentials/mqtt",
    "hub/credentials/dynsec-client", "hub/credentials/postgres", "hub/credentials/mongodb"]) await import(`./dist/${m}.js`)'
  if ! out=$("${run[@]}" --input-type=module -e "$load_all" 2>&1 &&
    "${run[@]}" dist/hub/main.js db upgrade 2>&1); then
    "$DOCKER" rmi "$tag" >/dev/null 2>&1 || true
    die "$tag does not run as uid 1000 on a read-only root file system, as the Helm chart runs it (removed it): $out"
  fi
  log "$tag runs as uid 1000 on a read-only root file system"
}
