#!/usr/bin/env bash
# Test control plane for the Kubernetes spawner: etcd from Debian, kube-apiserver (and kubectl) built from the
# Go module proxy, helm built the same way. Builds are cached under /opt/labhub/k8s; a second run takes seconds.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.30.14}"
# Bumped when the way the binaries are built changes, so cached builds are redone.
BUILD_REVISION=2
HELM_VERSION="${HELM_VERSION:-3.15.4}"
PREFIX="${LABHUB_K8S_DIR:-/opt/labhub/k8s}"
BIN="$PREFIX/bin"
export GOFLAGS="${GOFLAGS:--p=2} -buildvcs=false"
SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); fi
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

if ! command -v etcd >/dev/null 2>&1; then
  echo "setup-k8s: installing etcd-server from Debian"
  "${SUDO[@]}" apt-get update -qq -o Acquire::Retries=3
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq -o Acquire::Retries=3 etcd-server >/dev/null
  # The Debian package may start a system etcd on :2379; tests run their own on free ports.
  "${SUDO[@]}" systemctl disable --now etcd >/dev/null 2>&1 || true
fi
for tool in openssl curl; do
  command -v "$tool" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "$tool" >/dev/null
done
need_go() {
  command -v go >/dev/null 2>&1 || { echo "setup-k8s: Go 1.22 or newer is needed to build kube-apiserver and helm (Debian's golang-go is too old)" >&2; exit 1; }
}

# k8s.io/kubernetes points its staging modules at ./staging; a module that depends on it must replace each of
# them with the published v0.x release of the same minor version.
build_kubernetes() {
  if have_version kube-apiserver "$K8S_VERSION-$BUILD_REVISION" && have_version kubectl "$K8S_VERSION-$BUILD_REVISION"; then return; fi
  need_go
  local wrapper="$PREFIX/src/kubernetes-$K8S_VERSION"
  mkdir -p "$wrapper"
  cd "$wrapper"
  if [ ! -f .resolved ]; then
    rm -f go.mod go.sum
    go mod init labhub.invalid/k8s-build >/dev/null 2>&1
    go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" >/dev/null
    local gomod
    gomod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$K8S_VERSION.mod"
    {
      echo "require k8s.io/kubernetes v$K8S_VERSION"
      grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging' "$gomod" | awk -v v="$(staging_version)" '{print "replace " $1 " => " $1 " " v}'
    } >> go.mod
    go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION"
    touch .resolved
  fi
  if ! have_version kube-apiserver "$K8S_VERSION-$BUILD_REVISION"; then
    echo "setup-k8s: building kube-apiserver $K8S_VERSION (slow the first time)"
    go build -ldflags "$(version_ldflags)" -o "$BIN/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
    echo "$K8S_VERSION-$BUILD_REVISION" > "$BIN/kube-apiserver.version"
  fi
  if ! have_version kubectl "$K8S_VERSION-$BUILD_REVISION"; then
    echo "setup-k8s: building kubectl $K8S_VERSION"
    go build -ldflags "$(version_ldflags)" -o "$BIN/kubectl" k8s.io/kubernetes/cmd/kubectl
    echo "$K8S_VERSION-$BUILD_REVISION" > "$BIN/kubectl.version"
  fi
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
echo "setup-k8s: etcd $(etcd --version | head -1 | awk '{print $3}'), kube-apiserver $(cat "$BIN/kube-apiserver.version"), helm $(cat "$BIN/helm.version") in $BIN ($(($(date +%s) - START)) s)"
