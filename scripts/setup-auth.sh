#!/usr/bin/env bash
# The identity-provider side of LabHub's test environment (shared/TEST-ENV.md, "Identity providers"); called by
# setup-test-env.sh.
#   1. slapd + ldap-utils (the LDAP tests run their own throwaway slapd on a high port), libpam0g-dev (headers for
#      the PAM addon), installed if missing. Debian's postinst may start a system slapd: it is stopped and disabled,
#      so only the tests' own servers run.
#   2. node-linux-pam's native addon, compiled from source with node-gyp when its .node file is missing (no
#      prebuilt binary can be downloaded here).
# Idempotent; when everything is there it costs well under a second. Prints what it did.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive
did=()
log() { echo "setup-auth: $*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else log "not root and no sudo: installs will fail"; fi
fi
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]; }
missing=()
for p in slapd ldap-utils libpam0g-dev g++ make python3; do pkg_installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  T0=$(date +%s)
  log "installing ${missing[*]}"
  apt_get update -q >/dev/null
  apt_get install -y -q --no-install-recommends "${missing[@]}" >/tmp/labhub-apt-auth.log 2>&1 || {
    tail -n 40 /tmp/labhub-apt-auth.log >&2
    exit 1
  }
  did+=("apt ${missing[*]} ($(($(date +%s) - T0)) s)")
fi

# The tests' slapd instances are the only ones wanted; a system one would hold port 389 and data we never use.
if pgrep -x slapd -u openldap >/dev/null 2>&1; then
  "${SUDO[@]}" service slapd stop >/dev/null 2>&1 || "${SUDO[@]}" pkill -x -u openldap slapd || true
  did+=("stopped the system slapd")
fi
if command -v update-rc.d >/dev/null 2>&1 && ls /etc/rc*.d/S*slapd >/dev/null 2>&1; then
  "${SUDO[@]}" update-rc.d slapd disable >/dev/null 2>&1 || true
  did+=("disabled the slapd service")
fi

ADDON="$REPO/node_modules/node-linux-pam/build/Release/node-linux-pam.node"
if [ -d "$REPO/node_modules/node-linux-pam" ] && [ ! -f "$ADDON" ]; then
  T0=$(date +%s)
  log "building node-linux-pam from source"
  (cd "$REPO/node_modules/node-linux-pam" && npx --yes node-gyp rebuild >/tmp/labhub-pam-build.log 2>&1) || {
    tail -n 40 /tmp/labhub-pam-build.log >&2
    exit 1
  }
  did+=("node-linux-pam addon ($(($(date +%s) - T0)) s)")
fi

if [ ${#did[@]} -eq 0 ]; then did=("nothing to do"); fi
log "did: $(printf '%s; ' "${did[@]}" | sed 's/; $//')"
log "$(/usr/sbin/slapd -VV 2>&1 | head -n 1 | sed 's/^@(#) \$//')"
