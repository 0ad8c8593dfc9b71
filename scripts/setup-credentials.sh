#!/usr/bin/env bash
# What the credential-broker tests need (docs/credentials.md):
#   - Debian's mosquitto (with the dynamic-security plugin) and mosquitto-clients;
#   - FerretDB 1.24 (a MongoDB-wire server on SQLite), built from the Go module proxy into $LABHUB_FERRETDB
#     (default /opt/labhub/ferretdb/ferretdb). No MongoDB server can be installed from the reachable registries.
# Idempotent: a few dpkg queries and one `ferretdb --version` when everything is there.
set -euo pipefail

FERRETDB_VERSION=v1.24.0
FERRETDB=${LABHUB_FERRETDB:-/opt/labhub/ferretdb/ferretdb}
PLUGIN=/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so
export DEBIAN_FRONTEND=noninteractive
log() { echo "setup-credentials: $*"; }

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

missing=()
for p in mosquitto mosquitto-clients; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = "installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_get update -qq -o Acquire::Retries=3
  apt_get install -y -qq -o Acquire::Retries=3 -o Dpkg::Use-Pty=0 "${missing[@]}" >/tmp/labhub-apt-credentials.log 2>&1 || {
    tail -n 40 /tmp/labhub-apt-credentials.log >&2
    exit 1
  }
fi
# The package starts a system broker on 1883; tests run their own on free ports and need nothing listening there.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  "${SUDO[@]}" systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi
[ -f "$PLUGIN" ] || { log "ERROR: $PLUGIN missing after installing mosquitto"; exit 1; }

if [ "$("$FERRETDB" --version 2>/dev/null | awk '/^version:/{print $2}')" != "$FERRETDB_VERSION" ]; then
  command -v go >/dev/null 2>&1 || { log "ERROR: go is needed to build FerretDB"; exit 1; }
  T0=$(date +%s)
  log "building FerretDB $FERRETDB_VERSION from the Go module proxy (a few minutes)"
  WORK=$(mktemp -d)
  trap 'chmod -R u+w "$WORK"; rm -rf "$WORK"' EXIT
  # `go install …@version` fails here (the proxy refuses the module's version list), and the module's build
  # wants a generated version.txt: build a copy of the module with that file, through a small wrapper module.
  (cd "$WORK" && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" >download.json)
  SRC=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Dir"])' "$WORK/download.json")
  cp -r "$SRC" "$WORK/ferretdb-src"
  chmod -R u+w "$WORK/ferretdb-src"
  echo "$FERRETDB_VERSION" >"$WORK/ferretdb-src/build/version/version.txt"
  mkdir "$WORK/wrapper"
  cat >"$WORK/wrapper/go.mod" <<MOD
module labhub.invalid/ferretdb

go 1.22

require github.com/FerretDB/FerretDB $FERRETDB_VERSION

replace github.com/FerretDB/FerretDB => ../ferretdb-src
MOD
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/FerretDB/FerretDB/cmd/ferretdb"\n' >"$WORK/wrapper/tools.go"
  (cd "$WORK/wrapper" && go mod tidy >/tmp/labhub-ferretdb-build.log 2>&1 &&
    CGO_ENABLED=0 go build -o "$WORK/ferretdb" github.com/FerretDB/FerretDB/cmd/ferretdb >>/tmp/labhub-ferretdb-build.log 2>&1) || {
    tail -n 40 /tmp/labhub-ferretdb-build.log >&2
    exit 1
  }
  "${SUDO[@]}" mkdir -p "$(dirname "$FERRETDB")"
  "${SUDO[@]}" install -m 0755 "$WORK/ferretdb" "$FERRETDB"
  log "FerretDB built in $(($(date +%s) - T0)) s"
fi
log "$(mosquitto -h 2>/dev/null | head -n 1); FerretDB $("$FERRETDB" --version | awk '/^version:/{print $2}') ($FERRETDB)"
