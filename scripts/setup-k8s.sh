#!/usr/bin/env bash
# The parts of the test cluster (scripts/k8s-cluster.sh):
# etcd, containerd, runc, the CNI plugins, iptables, ipset and conntrack from Debian; kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy and kubectl built from the Go module proxy, and helm,
# CoreDNS, kube-router, local-path-provisioner and metrics-server built the same way. Builds are cached under
# /opt/labhub/k8s; a second run takes seconds.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.30.14}"
# Bumped when the way the binaries are built changes, so cached builds are redone.
BUILD_REVISION=2
HELM_VERSION="${HELM_VERSION:-3.15.4}"
COREDNS_VERSION=1.11.3
KUBE_ROUTER_VERSION=2.1.0
LOCAL_PATH_VERSION=0.0.30
# 0.7.x is the line metrics-server supports for Kubernetes 1.27 to 1.30 (0.8 wants 1.31 or newer).
METRICS_SERVER_VERSION=0.7.2
K8S_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
PREFIX="${LABHUB_K8S_DIR:-/opt/labhub/k8s}"
# Absolute: the builds below change directory.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="$PREFIX/bin"
export GOFLAGS="${GOFLAGS:--p=2} -buildvcs=false"
SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); fi
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
if ! mkdir -p "$BIN" 2>/dev/null; then
  "${SUDO[@]}" mkdir -p "$BIN" && "${SUDO[@]}" chown -R "$(id -u):$(id -g)" "$PREFIX"
fi
START=$(date +%s)

staging_version() { echo "v0.${K8S_VERSION#1.}"; }
have_version() { [ -x "$BIN/$1" ] && [ -f "$BIN/$1.version" ] && [ "$(cat "$BIN/$1.version")" = "$2" ]; }
# Without these a build from the module proxy reports v0.0.0-master, and clients that check versions (helm's
# kubeVersion) refuse it.
version_ldflags() {
  local minor="${K8S_VERSION#1.}"
  echo "-X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*} -X k8s.io/component-base/version.gitTreeState=clean"
}

DEBIAN_PKGS=(etcd-server containerd runc containernetworking-plugins iptables ipset conntrack)
missing=()
for p in "${DEBIAN_PKGS[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-k8s: installing ${missing[*]} from Debian"
  apt_get update -qq -o Acquire::Retries=3
  apt_get install -y -qq -o Acquire::Retries=3 "${missing[@]}" >/dev/null
  # The packages may start a system etcd on :2379 and a system containerd; tests and the cluster run their own.
  "${SUDO[@]}" systemctl disable --now etcd >/dev/null 2>&1 || true
fi
for tool in openssl curl; do
  command -v "$tool" >/dev/null 2>&1 || apt_get install -y -qq "$tool" >/dev/null
done
need_go() {
  command -v go >/dev/null 2>&1 || { echo "setup-k8s: Go 1.22 or newer is needed to build kube-apiserver and helm (Debian's golang-go is too old)" >&2; exit 1; }
}

# k8s.io/kubernetes points its staging modules at ./staging; a module that depends on it must replace each of
# them with the published v0.x release of the same minor version.
build_kubernetes() {
  local c all=1
  for c in "${K8S_COMPONENTS[@]}"; do have_version "$c" "$K8S_VERSION-$BUILD_REVISION" || all=0; done
  [ "$all" = 1 ] && return
  need_go
  local wrapper="$PREFIX/src/kubernetes-$K8S_VERSION"
  mkdir -p "$wrapper"
  cd "$wrapper"
  if [ ! -f .resolved-all ]; then
    rm -f go.mod go.sum .resolved
    go mod init labhub.invalid/k8s-build >/dev/null 2>&1
    go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" >/dev/null
    local gomod
    gomod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$K8S_VERSION.mod"
    {
      echo "require k8s.io/kubernetes v$K8S_VERSION"
      grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging' "$gomod" | awk -v v="$(staging_version)" '{print "replace " $1 " => " $1 " " v}'
    } >> go.mod
    go get $(for c in "${K8S_COMPONENTS[@]}"; do echo "k8s.io/kubernetes/cmd/$c@v$K8S_VERSION"; done)
    touch .resolved-all
  fi
  for c in "${K8S_COMPONENTS[@]}"; do
    have_version "$c" "$K8S_VERSION-$BUILD_REVISION" && continue
    echo "setup-k8s: building $c $K8S_VERSION (slow the first time)"
    go build -ldflags "$(version_ldflags)" -o "$BIN/$c" "k8s.io/kubernetes/cmd/$c"
    echo "$K8S_VERSION-$BUILD_REVISION" > "$BIN/$c.version"
  done
}

# go_install NAME PACKAGE VERSION: a static binary from the Go module proxy, as the module itself pins its
# dependencies (none of these needs a replace).
go_install() {
  have_version "$1" "$3" && return
  need_go
  echo "setup-k8s: building $1 $3"
  local gobin="$PREFIX/src/gobin"
  mkdir -p "$gobin"
  CGO_ENABLED=0 GOBIN="$gobin" go install "$2@v$3"
  mv "$gobin/$(basename "$2")" "$BIN/$1"
  echo "$3" > "$BIN/$1.version"
}

# The pod sandbox process (images/pause), built here because no registry serves registry.k8s.io/pause.
build_pause() {
  local src
  src="$HERE/../images/pause"
  local sum
  sum=$(cat "$src/main.go" "$src/go.mod" | sha256sum | cut -c1-16)
  have_version pause "$sum" && return
  need_go
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$BIN/pause" .)
  echo "$sum" > "$BIN/pause.version"
}

# helm is built in its own wrapper module with the same k8s.io/* releases as kube-apiserver: the module proxy
# reachable here does not hold every k8s.io/* version a helm release pins.
build_helm() {
  local wrapper="$PREFIX/src/helm-$HELM_VERSION"
  if ! have_version helm "$HELM_VERSION"; then
    need_go
    echo "setup-k8s: building helm $HELM_VERSION"
    mkdir -p "$wrapper"
    cd "$wrapper"
    if [ ! -f .resolved ]; then
      rm -f go.mod go.sum
      go mod init labhub.invalid/helm-build >/dev/null 2>&1
      {
        echo "require helm.sh/helm/v3 v$HELM_VERSION"
        for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go component-base component-helpers kubectl metrics; do
          echo "replace k8s.io/$m => k8s.io/$m $(staging_version)"
        done
      } >> go.mod
      go get "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
      touch .resolved
    fi
    go build -o "$BIN/helm" helm.sh/helm/v3/cmd/helm
    echo "$HELM_VERSION" > "$BIN/helm.version"
  fi
}

build_kubernetes
build_helm
go_install coredns github.com/coredns/coredns "$COREDNS_VERSION"
go_install kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router "$KUBE_ROUTER_VERSION"
go_install local-path-provisioner github.com/rancher/local-path-provisioner "$LOCAL_PATH_VERSION"
go_install metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server "$METRICS_SERVER_VERSION"
build_pause
echo "setup-k8s: etcd $(etcd --version | head -1 | awk '{print $3}'), Kubernetes $(cat "$BIN/kube-apiserver.version"), helm $(cat "$BIN/helm.version"), CoreDNS $COREDNS_VERSION, kube-router $KUBE_ROUTER_VERSION, local-path-provisioner $LOCAL_PATH_VERSION, metrics-server $METRICS_SERVER_VERSION in $BIN ($(($(date +%s) - START)) s)"
