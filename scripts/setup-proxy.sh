#!/usr/bin/env bash
# Proxy benchmarks and compatibility tests: nginx-light (a reference proxy for `npm run bench:proxy`) and
# configurable-http-proxy 5.3.0 in /opt/labhub/chp (the anchor; not a project dependency). Idempotent, fast when done.
set -euo pipefail
log() { echo "setup-proxy: $*"; }
SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo -n); fi
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

CHP_DIR=/opt/labhub/chp
CHP_VERSION=5.3.0

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  log "installing nginx-light (Debian)"
  # The package's own service must not start and hold port 80; the benchmark starts nginx with its own config.
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
  apt_get install -y -q nginx-light >/tmp/labhub-apt-nginx.log 2>&1 || {
    apt_get update -q >/dev/null 2>&1
    apt_get install -y -q nginx-light >/tmp/labhub-apt-nginx.log 2>&1 || {
      tail -n 30 /tmp/labhub-apt-nginx.log >&2
      exit 1
    }
  }
  "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
fi

installed=$(node -p "require('$CHP_DIR/node_modules/configurable-http-proxy/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$CHP_VERSION" ]; then
  log "installing configurable-http-proxy $CHP_VERSION into $CHP_DIR (npm)"
  "${SUDO[@]}" mkdir -p "$CHP_DIR"
  "${SUDO[@]}" npm install --prefix "$CHP_DIR" --no-save --no-audit --no-fund --loglevel=error \
    "configurable-http-proxy@$CHP_VERSION" >/tmp/labhub-npm-chp.log 2>&1 || {
    tail -n 30 /tmp/labhub-npm-chp.log >&2
    exit 1
  }
fi
"$CHP_DIR/node_modules/.bin/configurable-http-proxy" --version >/dev/null || {
  log "ERROR: $CHP_DIR/node_modules/.bin/configurable-http-proxy does not run on $(node --version)"
  exit 1
}
log "nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*\///'), configurable-http-proxy $("$CHP_DIR/node_modules/.bin/configurable-http-proxy" --version)"
