#!/usr/bin/env bash
# A throwaway Kubernetes control plane for tests: etcd and kube-apiserver (built by scripts/setup-k8s.sh) on
# loopback ports, with a CA, serving and admin client certificates and service-account signing keys made by openssl.
#   k8s-test-cluster.sh start DIR [APISERVER_PORT] [ETCD_PORT] [ETCD_PEER_PORT]   → DIR/admin.kubeconfig once /readyz answers
#   k8s-test-cluster.sh stop DIR
# No scheduler, controller-manager or kubelet: tests drive pods themselves (tests/helpers/pod-runner.ts).
set -euo pipefail

BIN="${LABHUB_K8S_DIR:-/opt/labhub/k8s}/bin"
cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [APISERVER_PORT] [ETCD_PORT] [ETCD_PEER_PORT]" >&2; exit 2; }

stop() {
  for name in kube-apiserver etcd; do
    if [ -f "$dir/$name.pid" ]; then
      kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "unknown command $cmd" >&2; exit 2; }

port="${3:-6443}"
etcd_port="${4:-2379}"
peer_port="${5:-$((etcd_port + 1))}"
[ -x "$BIN/kube-apiserver" ] || { echo "kube-apiserver is not built: run scripts/setup-k8s.sh" >&2; exit 1; }
command -v etcd >/dev/null || { echo "etcd is not installed: run scripts/setup-k8s.sh" >&2; exit 1; }
mkdir -p "$dir/pki" "$dir/etcd"
pki="$dir/pki"

if [ ! -f "$pki/admin.crt" ]; then
  ssl() { openssl "$@" 2>/dev/null; }
  ssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 2 -subj "/CN=labhub-test-ca"
  ssl req -newkey rsa:2048 -nodes -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" -subj "/CN=kube-apiserver"
  printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > "$pki/apiserver.ext"
  ssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -out "$pki/apiserver.crt" -days 2 -extfile "$pki/apiserver.ext"
  ssl req -newkey rsa:2048 -nodes -keyout "$pki/admin.key" -out "$pki/admin.csr" -subj "/O=system:masters/CN=labhub-test-admin"
  printf 'extendedKeyUsage=clientAuth\n' > "$pki/admin.ext"
  ssl x509 -req -in "$pki/admin.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -out "$pki/admin.crt" -days 2 -extfile "$pki/admin.ext"
  ssl genrsa -out "$pki/sa.key" 2048
  ssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
fi

b64() { base64 -w0 < "$1"; }
cat > "$dir/admin.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "https://127.0.0.1:$port", certificate-authority-data: "$(b64 "$pki/ca.crt")"}
users:
- name: admin
  user: {client-certificate-data: "$(b64 "$pki/admin.crt")", client-key-data: "$(b64 "$pki/admin.key")"}
contexts:
- name: test
  context: {cluster: test, user: admin, namespace: default}
current-context: test
KUBECONFIG
chmod 600 "$dir/admin.kubeconfig"

stop
setsid etcd --name test --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "test=http://127.0.0.1:$peer_port" --unsafe-no-fsync > "$dir/etcd.log" 2>&1 < /dev/null &
echo $! > "$dir/etcd.pid"

setsid "$BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc --api-audiences https://kubernetes.default.svc \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 --authorization-mode RBAC --allow-privileged=false \
  --enable-priority-and-fairness=false --profiling=false --endpoint-reconciler-type none \
  --cert-dir "$dir/pki" > "$dir/kube-apiserver.log" 2>&1 < /dev/null &
echo $! > "$dir/kube-apiserver.pid"

for _ in $(seq 1 240); do
  if curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
    echo "$dir/admin.kubeconfig"
    exit 0
  fi
  if ! kill -0 "$(cat "$dir/etcd.pid")" 2>/dev/null; then
    echo "etcd exited:" >&2; tail -5 "$dir/etcd.log" >&2; stop; exit 1
  fi
  if ! kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null; then
    echo "kube-apiserver exited:" >&2; tail -20 "$dir/kube-apiserver.log" >&2; stop; exit 1
  fi
  sleep 0.25
done
echo "kube-apiserver did not become ready in 60 s:" >&2; tail -20 "$dir/kube-apiserver.log" >&2; stop; exit 1
