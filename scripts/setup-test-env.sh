#!/usr/bin/env bash
# Installs the real services LabHub's tests and benchmarks run against (see shared/TEST-ENV.md):
#   - Debian: jupyterhub + python3-notebook (JupyterHub 3.0 and jupyterhub-singleuser 3.0 in /usr/bin),
#     postgresql (server 15 in /usr/lib/postgresql/15/bin), wrk, hyperfine, build tools for node-gyp.
#   - A venv at $LABHUB_JH5_VENV (default /opt/labhub/venv-jh5) with 'jupyterhub>=5,<6' + jupyterlab, and one at
#     $LABHUB_JH6_VENV (default /opt/labhub/venv-jh6) with 'jupyterhub>=6,<7' + jupyterlab
#     from PyPI: the 5.x single-user server today's official images ship.
#   - Docker (scripts/setup-docker.sh): Debian's engine, started if not running, and the notebook test images.
# Idempotent: when everything is already there it only checks (4-8 s, mostly the two singleuser --version calls);
# `apt-get update` runs only when a Debian package is missing.
set -euo pipefail

START=$(date +%s)
JH5_VENV=${LABHUB_JH5_VENV:-/opt/labhub/venv-jh5}
JH6_VENV=${LABHUB_JH6_VENV:-/opt/labhub/venv-jh6}
SYS_PY=/usr/bin/python3 # never the pyenv shim first in PATH: Debian's packages live in this interpreter
export DEBIAN_FRONTEND=noninteractive

did=()
log() { echo "setup-test-env: $*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
    log "not root and no sudo: cannot install packages"; fi
fi
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

K8S_LOG=$(mktemp)
trap 'kill "${K8S_PID:-}" 2>/dev/null || true; rm -f "$K8S_LOG"' EXIT

# ---------------------------------------------------------------- Kubernetes parts, in the background
# etcd, containerd, CNI plugins (Debian) + Kubernetes, helm, CoreDNS, kube-router, local-path-provisioner and
# metrics-server built from the Go module proxy: about 13 minutes of CPU-bound Go on a new machine, then under a
# second. It needs nothing the other steps make, so it runs beside them; see that script.
bash "$(dirname "${BASH_SOURCE[0]}")/setup-k8s.sh" >"$K8S_LOG" 2>&1 &
K8S_PID=$!

# ---------------------------------------------------------------- Debian packages
APT_PKGS=(jupyterhub python3-notebook postgresql wrk hyperfine build-essential python3 python3-venv chromium)

pkg_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

missing=()
for p in "${APT_PKGS[@]}"; do
  pkg_installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  # Don't let the postgresql package create a 'main' cluster on port 5432: tests make their own throwaway
  # clusters. createcluster.conf includes createcluster.d/ (and dpkg owns the .conf, so we don't touch it).
  if [ ! -e /etc/postgresql-common/createcluster.d/labhub.conf ]; then
    "${SUDO[@]}" mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = off" | "${SUDO[@]}" tee /etc/postgresql-common/createcluster.d/labhub.conf >/dev/null
  fi
  apt_get update -qq -o Acquire::Retries=3
  apt_get install -y -qq -o Acquire::Retries=3 -o Dpkg::Use-Pty=0 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/tmp/labhub-apt.log 2>&1 || {
    tail -n 40 /tmp/labhub-apt.log >&2
    exit 1
  }
  did+=("apt-get install ${missing[*]} ($(($(date +%s) - START)) s)")
fi

# ---------------------------------------------------------------- checks for the Debian side
# `X --version` prints the version on its last line; a jupyterhub-singleuser call costs 1.5 s (3.x)
# to 3 s (5.x), so each runs once.
version_of() { "$1" --version 2>/dev/null | tail -n 1 || true; }

JH3=$(version_of /usr/bin/jupyterhub-singleuser)
[ "${JH3%%.*}" = "3" ] || {
  log "ERROR: /usr/bin/jupyterhub-singleuser --version does not report 3.x"
  /usr/bin/jupyterhub-singleuser --version >&2 || true
  exit 1
}
[ -x /usr/lib/postgresql/15/bin/initdb ] && [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || {
  log "ERROR: PostgreSQL 15 binaries missing in /usr/lib/postgresql/15/bin"
  exit 1
}
id postgres >/dev/null 2>&1 || { log "ERROR: no 'postgres' user"; exit 1; }

# ---------------------------------------------------------------- JupyterHub 5.x and 6.x venvs
# venv_with_jupyterhub DIR MAJOR: a venv at DIR with jupyterhub MAJOR.x and jupyterlab from PyPI, unless it has one.
venv_with_jupyterhub() {
  local dir=$1 major=$2 version t0
  version=$(version_of "$dir/bin/jupyterhub-singleuser")
  [ "${version%%.*}" = "$major" ] && return 0
  t0=$(date +%s)
  log "creating $dir with jupyterhub>=$major,<$((major + 1)) and jupyterlab (PyPI)"
  "${SUDO[@]}" rm -rf "$dir"
  "${SUDO[@]}" mkdir -p "$(dirname "$dir")"
  "${SUDO[@]}" "$SYS_PY" -m venv "$dir"
  "${SUDO[@]}" "$dir/bin/pip" install -q --disable-pip-version-check --retries 5 \
    "jupyterhub>=$major,<$((major + 1))" jupyterlab >/tmp/labhub-pip.log 2>&1 || {
    tail -n 40 /tmp/labhub-pip.log >&2
    exit 1
  }
  version=$(version_of "$dir/bin/jupyterhub-singleuser")
  [ "${version%%.*}" = "$major" ] || {
    log "ERROR: $dir/bin/jupyterhub-singleuser --version does not report $major.x"
    "$dir/bin/jupyterhub-singleuser" --version >&2 || true
    exit 1
  }
  did+=("venv $dir ($(($(date +%s) - t0)) s)")
}
venv_with_jupyterhub "$JH5_VENV" 5
venv_with_jupyterhub "$JH6_VENV" 6
JH5=$(version_of "$JH5_VENV/bin/jupyterhub-singleuser")
JH6=$(version_of "$JH6_VENV/bin/jupyterhub-singleuser")

"$JH5_VENV/bin/python" -c 'import jupyterhub_idle_culler' 2>/dev/null || { T0=$(date +%s); log "installing jupyterhub-idle-culler into $JH5_VENV (PyPI)"; "${SUDO[@]}" "$JH5_VENV/bin/pip" install -q --disable-pip-version-check --retries 5 jupyterhub-idle-culler >/tmp/labhub-pip.log 2>&1 || { tail -n 40 /tmp/labhub-pip.log >&2; exit 1; }; did+=("jupyterhub-idle-culler ($(($(date +%s) - T0)) s)"); }
# ---------------------------------------------------------------- Docker engine and notebook images
# docker.io + dockerd + labhub/debian:bookworm + labhub/notebook-debian:latest (cold ~2 min, then <1 s); see that script.
bash "$(dirname "${BASH_SOURCE[0]}")/setup-docker.sh"
# slapd, ldap-utils, libpam0g-dev (before npm ci builds the PAM addon); see that script.
bash "$(dirname "${BASH_SOURCE[0]}")/setup-auth.sh"

# nginx-light and configurable-http-proxy 5.3.0 in /opt/labhub/chp, for proxy benchmarks and CHP tests; see that script.
bash "$(dirname "${BASH_SOURCE[0]}")/setup-proxy.sh"

# Mosquitto with dynamic security, FerretDB 1.24 (cold ~3 min, then <1 s); see that script.
bash "$(dirname "${BASH_SOURCE[0]}")/setup-credentials.sh"

# Mosquitto, docker-compose and the DataLab images (cold ~4 min, then ~2 s); see that script.
bash "$(dirname "${BASH_SOURCE[0]}")/setup-datalab.sh"

if ! wait "$K8S_PID"; then
  cat "$K8S_LOG" >&2
  log "ERROR: scripts/setup-k8s.sh failed"
  exit 1
fi
cat "$K8S_LOG"

# ---------------------------------------------------------------- the Kubernetes test cluster
# One node from the parts setup-k8s.sh built, with the labhub/* images built above imported into its containerd
# (cold ~3 min, then ~2 s); the Kubernetes tests run on it. `bash scripts/k8s-cluster.sh down` removes it.
T0=$(date +%s)
"${SUDO[@]}" bash "$(dirname "${BASH_SOURCE[0]}")/k8s-cluster.sh" up >/dev/null
did+=("Kubernetes test cluster up ($(($(date +%s) - T0)) s)")

# ---------------------------------------------------------------- summary
PG=$(/usr/lib/postgresql/15/bin/postgres --version)
if [ ${#did[@]} -eq 0 ]; then did=("nothing to install"); fi
log "did: $(printf '%s; ' "${did[@]}" | sed 's/; $//')"
log "jupyterhub-singleuser $JH3 (/usr/bin), $JH5 ($JH5_VENV/bin), $JH6 ($JH6_VENV/bin); JupyterHub $(dpkg-query -W -f='${Version}' jupyterhub) (/usr/bin/jupyterhub)"
log "$PG; $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2); $(hyperfine --version)"
log "done in $(($(date +%s) - START)) s"
