#!/usr/bin/env bash
# A one-node Kubernetes cluster on this machine, from upstream parts built by scripts/setup-k8s.sh:
#   etcd (Debian), kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy (Kubernetes, built
#   from the Go module proxy), containerd and runc (Debian, a containerd of its own beside Docker's), the bridge CNI
#   plugins (Debian), CoreDNS (a pod), kube-router as the NetworkPolicy enforcer and local-path-provisioner as the
#   default StorageClass, and metrics-server serving metrics.k8s.io through the API server's aggregation layer (all
#   three on the host, like static pods would be).
#
#   k8s-cluster.sh up       start what is not running or runs with other flags (idempotent); the last two lines are
#                           shell for `eval`
#   k8s-cluster.sh env      print those two lines again
#   k8s-cluster.sh images   import the labhub/* images of the Docker engine into the cluster's containerd
#   k8s-cluster.sh status   what runs, the node, the system pods
#   k8s-cluster.sh down     stop everything and remove what `up` made (state, iptables chains, the bridge)
#
# No registry is reachable here: every image a pod runs is built on this machine and imported (`images`), and the
# pod sandbox image is labhub/pause (images/pause). State lives in $LABHUB_CLUSTER_DIR (default
# /var/lib/labhub-cluster); run-time sockets in /run/labhub-cluster.
set -euo pipefail

PREFIX="${LABHUB_K8S_DIR:-/opt/labhub/k8s}"
BIN="$PREFIX/bin"
STATE="${LABHUB_CLUSTER_DIR:-/var/lib/labhub-cluster}"
RUN=/run/labhub-cluster
PKI="$STATE/pki"
LOGS="$STATE/logs"
SOCK="$RUN/containerd.sock"
ETCD_PORT="${LABHUB_CLUSTER_ETCD_PORT:-12379}"
API_PORT="${LABHUB_CLUSTER_API_PORT:-6443}"
METRICS_PORT="${LABHUB_CLUSTER_METRICS_PORT:-4443}"
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
POD_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
CLUSTER_DOMAIN=cluster.local
# Routing table (and rule priority) that makes untranslated cluster IPs unreachable from pods.
UNTRANSLATED_TABLE=1096
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MANIFESTS="$HERE/k8s-cluster"
COMPONENTS=(etcd kube-apiserver containerd kubelet kube-controller-manager kube-scheduler kube-proxy kube-router local-path-provisioner metrics-server)

log() { echo "k8s-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

# The address pods and the API server's clients reach this node at: the source address of the default route.
node_ip() {
  local dev
  dev=$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
  [ -n "$dev" ] || dev=$(ip -4 -o addr show scope global | awk '{print $2; exit}')
  ip -4 -o addr show dev "$dev" scope global | awk '{split($4, a, "/"); print a[1]; exit}'
}
node_name() { hostname | tr '[:upper:]' '[:lower:]'; }

pid_of() { [ -f "$RUN/$1.pid" ] && cat "$RUN/$1.pid"; }
running() { local pid; pid=$(pid_of "$1" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

# start NAME COMMAND...: runs it detached with its log in $LOGS unless it already runs as COMMAND. One that runs with
# other arguments (started by an older version of this script) is restarted, so a new flag reaches a running cluster.
start() {
  local name=$1; shift
  if running "$name"; then
    local pid; pid=$(pid_of "$name")
    if cmp -s <(printf '%s\0' "$@") "/proc/$pid/cmdline"; then return; fi
    log "restarting $name: its command line changed"
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  # fd 9 is up's lock: a daemon that kept it would hold the lock for as long as it runs.
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$name.pid"
  log "started $name (pid $!)"
}

# wait_for WHAT SECONDS COMMAND...: retries COMMAND until it succeeds; shows the logs of whatever died meanwhile.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    for c in "${COMPONENTS[@]}"; do
      if [ -f "$RUN/$c.pid" ] && ! running "$c"; then
        log "$c exited while waiting for $what; its log ends:"; tail -20 "$LOGS/$c.log" >&2; exit 1
      fi
    done
    [ "$(date +%s)" -lt "$deadline" ] || die "$what not ready after $seconds s"
    sleep 1
  done
}

# write FILE: stdin into FILE, leaving it untouched when the content is the same (kube-proxy exits when its
# configuration file changes, and a second `up` must not disturb what runs).
write() {
  local tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

kubectl() { "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

require_parts() {
  local missing=()
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl helm coredns kube-router local-path-provisioner metrics-server pause; do
    [ -x "$BIN/$b" ] || missing+=("$b")
  done
  for c in etcd containerd runc iptables ipset conntrack; do command -v "$c" >/dev/null || missing+=("$c"); done
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: run scripts/setup-k8s.sh first"
}

# ---------------------------------------------------------------- certificates and kubeconfigs
ssl() { openssl "$@" 2>/dev/null; }
# cert NAME SUBJECT EXTENSIONS [CA]: a key and a certificate signed by the cluster's CA (or the CA named CA).
cert() {
  [ -f "$PKI/$1.crt" ] && return
  local ca=${4:-ca}
  ssl req -newkey rsa:2048 -nodes -keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj "$2"
  printf '%b\n' "$3" >"$PKI/$1.ext"
  ssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial -out "$PKI/$1.crt" -days 365 -extfile "$PKI/$1.ext"
  rm -f "$PKI/$1.csr" "$PKI/$1.ext"
}
# kubeconfig NAME USER_CERT SERVER
kubeconfig() {
  b64() { base64 -w0 <"$1"; }
  cat >"$STATE/$1.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: labhub
  cluster: {server: "$3", certificate-authority-data: "$(b64 "$PKI/ca.crt")"}
users:
- name: $1
  user: {client-certificate-data: "$(b64 "$PKI/$2.crt")", client-key-data: "$(b64 "$PKI/$2.key")"}
contexts:
- name: labhub
  context: {cluster: labhub, user: $1, namespace: default}
current-context: labhub
KUBECONFIG
  chmod 600 "$STATE/$1.kubeconfig"
}

make_pki() {
  local ip=$1 node=$2
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [ ! -f "$PKI/ca.crt" ]; then
    ssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 365 -subj "/CN=labhub-cluster-ca"
    ssl genrsa -out "$PKI/sa.key" 2048
    ssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
  fi
  # The aggregation layer's own CA: the API server proxies to metrics-server with a client certificate from it, and
  # metrics-server believes the X-Remote-User headers only from that certificate. A separate CA keeps any client
  # certificate of the cluster's CA from asserting those headers.
  [ -f "$PKI/front-proxy-ca.crt" ] ||
    ssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/front-proxy-ca.key" -out "$PKI/front-proxy-ca.crt" -days 365 -subj "/CN=labhub-front-proxy-ca"
  local client='extendedKeyUsage=clientAuth'
  cert apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:$ip,IP:$API_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN\nextendedKeyUsage=serverAuth"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  cert admin "/O=system:masters/CN=labhub-cluster-admin" "$client"
  cert controller-manager "/CN=system:kube-controller-manager" "$client"
  cert scheduler "/CN=system:kube-scheduler" "$client"
  cert kube-proxy "/CN=system:kube-proxy" "$client"
  cert kubelet-client "/O=system:nodes/CN=system:node:$node" "$client"
  cert kubelet "/CN=$node" "subjectAltName=IP:$ip,IP:127.0.0.1,DNS:$node\nextendedKeyUsage=serverAuth"
  # kube-router and the provisioner are cluster add-ons with their own RBAC (scripts/k8s-cluster/*.yaml).
  cert kube-router "/CN=labhub:kube-router" "$client"
  cert local-path-provisioner "/CN=labhub:local-path-provisioner" "$client"
  cert metrics-server-client "/CN=labhub:metrics-server" "$client"
  # The API server checks the name the aggregator dials (service.namespace.svc) against this certificate.
  cert metrics-server "/CN=metrics-server" "subjectAltName=IP:$ip,DNS:metrics-server.kube-system.svc\nextendedKeyUsage=serverAuth"
  cert front-proxy-client "/CN=front-proxy-client" "$client" front-proxy-ca
  local server="https://$ip:$API_PORT"
  kubeconfig admin admin "$server"
  kubeconfig controller-manager controller-manager "https://127.0.0.1:$API_PORT"
  kubeconfig scheduler scheduler "https://127.0.0.1:$API_PORT"
  kubeconfig kube-proxy kube-proxy "$server"
  kubeconfig kubelet kubelet-client "$server"
  kubeconfig kube-router kube-router "$server"
  kubeconfig local-path-provisioner local-path-provisioner "$server"
  kubeconfig metrics-server metrics-server-client "$server"
}

# ---------------------------------------------------------------- control plane
start_control_plane() {
  local ip=$1
  mkdir -p "$STATE/etcd"
  start etcd etcd --name labhub --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "labhub=http://127.0.0.1:$((ETCD_PORT + 1))"
  # The aggregation layer (--requestheader-*, --proxy-client-*) serves metrics.k8s.io from metrics-server; aggregator
  # routing dials its endpoint (this host) rather than its cluster IP, which only kube-proxy's rules would translate.
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" --bind-address 0.0.0.0 --advertise-address "$ip" --secure-port "$API_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=false --profiling=false --cert-dir "$PKI" \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=true
  wait_for "kube-apiserver" 120 curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://127.0.0.1:$API_PORT/readyz"
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$STATE/controller-manager.kubeconfig" --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" --bind-address 127.0.0.1 \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" --root-ca-file "$PKI/ca.crt" \
    --service-account-private-key-file "$PKI/sa.key" --use-service-account-credentials \
    --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs --cluster-cidr "$POD_CIDR" --node-cidr-mask-size 24 \
    --leader-elect=false --profiling=false
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$STATE/scheduler.kubeconfig" --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" --bind-address 127.0.0.1 --leader-elect=false --profiling=false
}

# ---------------------------------------------------------------- node: containerd, CNI, kubelet, kube-proxy
start_containerd() {
  mkdir -p "$STATE/containerd" "$RUN/containerd" "$STATE/cni/net.d"
  write "$STATE/containerd.toml" <<TOML
version = 2
root = "$STATE/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/labhub/pause:latest"
  # Root here lacks CAP_SYS_RESOURCE (a VM sandbox): the kubelet's negative OOM scores for sandboxes would fail.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
TOML
  # One bridge for the node's pods; `firewall` lets their traffic through the FORWARD policy Docker sets to DROP.
  write "$STATE/cni/net.d/10-labhub.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "labhub",
  "plugins": [
    {"type": "bridge", "bridge": "labhub-cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NODE_POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$STATE/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"}
  ]
}
JSON
  start containerd containerd --config "$STATE/containerd.toml"
  wait_for "containerd" 30 ctr --address "$SOCK" version
}

start_node() {
  local ip=$1 node=$2
  mkdir -p "$STATE/kubelet"
  write "$STATE/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$PKI/kubelet.crt"
tlsPrivateKeyFile: "$PKI/kubelet.key"
containerRuntimeEndpoint: "unix://$SOCK"
cgroupDriver: cgroupfs
failSwapOn: false
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$DNS_SERVICE_IP]
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# The machine's disk is shared with Docker and the tests: never evict or collect images for disk pressure.
evictionHard: {memory.available: "100Mi"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 5s
YAML
  start kubelet "$BIN/kubelet" --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
    --root-dir "$STATE/kubelet" --hostname-override "$node" --node-ip "$ip" --pod-infra-container-image docker.io/labhub/pause:latest
  write "$STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$STATE/kube-proxy.kubeconfig"}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $node
# Leave the machine's conntrack table size alone.
conntrack: {maxPerCore: 0}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
YAML
  start kube-proxy "$BIN/kube-proxy" --config "$STATE/kube-proxy.yaml"
}

# ---------------------------------------------------------------- images
# labhub/pause and labhub/coredns: a static binary from setup-k8s.sh in an empty image, rebuilt when it changes.
binary_image() {
  local name=$1 want ctx
  want=$(sha256sum "$BIN/$name" | cut -c1-16)
  [ "$(docker image inspect -f '{{index .Config.Labels "org.labhub.binary"}}' "labhub/$name:latest" 2>/dev/null)" = "$want" ] && return
  ctx=$(mktemp -d)
  cp "$BIN/$name" "$HERE/../images/$name/Dockerfile" "$ctx/"
  DOCKER_BUILDKIT=0 docker build -q --label "org.labhub.binary=$want" -t "labhub/$name:latest" "$ctx" >/dev/null 2>&1
  rm -rf "$ctx"
  log "built labhub/$name"
}

# The labhub/* images of the Docker engine, imported into the cluster's containerd when missing or changed.
import_images() {
  command -v docker >/dev/null && docker info >/dev/null 2>&1 || die "the Docker engine holds the cluster's images: start it (scripts/setup-docker.sh)"
  binary_image pause
  binary_image coredns
  mkdir -p "$STATE/imported"
  local image id
  for image in $(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^labhub/' | grep -v '<none>'); do
    id=$(docker image inspect -f '{{.Id}}' "$image")
    local mark="$STATE/imported/${image//[\/:]/_}"
    if [ -f "$mark" ] && [ "$(cat "$mark")" = "$id" ]; then continue; fi
    log "importing $image"
    docker save "$image" | ctr --address "$SOCK" -n k8s.io images import --all-platforms - >/dev/null
    echo "$id" >"$mark"
  done
}

# ---------------------------------------------------------------- add-ons
start_addons() {
  local node=$1 ip=$2
  kubectl apply -f "$MANIFESTS/rbac.yaml" >/dev/null
  sed -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|" -e "s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|" "$MANIFESTS/coredns.yaml" | kubectl apply -f - >/dev/null
  sed -e "s|@PATH@|$STATE/local-path|" "$MANIFESTS/local-path.yaml" | kubectl apply -f - >/dev/null
  mkdir -p "$STATE/local-path"
  start kube-router "$BIN/kube-router" --kubeconfig "$STATE/kube-router.kubeconfig" --hostname-override "$node" \
    --run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false \
    --service-cluster-ip-range "$SERVICE_CIDR" --metrics-port 0 --health-port 20244
  # Run on the host, it reads from files what its Deployment would mount from the ConfigMap.
  kubectl -n kube-system get configmap local-path-config -o jsonpath='{.data.config\.json}' >"$STATE/local-path-config.json"
  kubectl -n kube-system get configmap local-path-config -o jsonpath='{.data.helperPod\.yaml}' >"$STATE/local-path-helper.yaml"
  start local-path-provisioner "$BIN/local-path-provisioner" start --namespace kube-system \
    --config "$STATE/local-path-config.json" --helper-pod-file "$STATE/local-path-helper.yaml" --configmap-name local-path-config \
    --service-account-name local-path-provisioner-helper --helper-image docker.io/labhub/debian:bookworm \
    --provisioner-name rancher.io/local-path --kubeconfig "$STATE/local-path-provisioner.kubeconfig"
  start_metrics_server "$ip"
}

# metrics-server on the host, reached by the API server through the Service and Endpoints of metrics-server.yaml.
# It scrapes the kubelet's /metrics/resource every 10 s (its minimum), so a new pod has metrics within about 20 s:
# its CPU rate needs two scrapes. The kubelet's serving certificate is checked against the cluster's CA.
start_metrics_server() {
  local ip=$1
  sed -e "s|@NODE_IP@|$ip|" -e "s|@PORT@|$METRICS_PORT|" -e "s|@CA_BUNDLE@|$(base64 -w0 <"$PKI/ca.crt")|" "$MANIFESTS/metrics-server.yaml" |
    kubectl apply -f - >/dev/null
  local kc="$STATE/metrics-server.kubeconfig"
  start metrics-server "$BIN/metrics-server" --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --bind-address "$ip" --secure-port "$METRICS_PORT" \
    --tls-cert-file "$PKI/metrics-server.crt" --tls-private-key-file "$PKI/metrics-server.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
    --metric-resolution 10s --kubelet-request-timeout 5s --profiling=false
}

print_env() {
  echo "export KUBECONFIG=$STATE/admin.kubeconfig"
  echo "export PATH=$BIN:\$PATH"
}

up() {
  local began ip node
  began=$(date +%s)
  require_parts
  [ "$(id -u)" -eq 0 ] || die "the kubelet, containerd and kube-proxy need root"
  ip=$(node_ip); node=$(node_name)
  [ -n "$ip" ] || die "no global IPv4 address for the node"
  mkdir -p "$STATE" "$RUN" "$LOGS"
  # Test files call `up` at the same moment: one starts what is missing, the others wait and find it running.
  exec 9>"$RUN/up.lock"
  flock 9
  # Pid files of daemons that died with the machine's last session would read as "exited" while waiting below.
  local c
  for c in "${COMPONENTS[@]}"; do running "$c" || rm -f "$RUN/$c.pid"; done
  # Bridged pod traffic must pass iptables for kube-proxy's Services and kube-router's policies.
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 >/dev/null 2>&1 || true
  # A pod's connection to a cluster IP that kube-proxy did not translate (a Service between two endpoints) would
  # leave by the default route, and this machine's network answers any address: a kept-alive connection then talks
  # to a stranger for good. Cluster IPs are unroutable on a real cluster; here a routing rule for traffic from the
  # pods' bridge makes them so (translated packets already carry a pod's address). A rule, not an iptables jump:
  # kube-router and Docker insert their jumps above ours in FORWARD and accepted pod traffic before it was reached.
  ip route replace unreachable "$SERVICE_CIDR" table "$UNTRANSLATED_TABLE"
  # Not grep -q: with pipefail, ip killed by SIGPIPE when grep stops reading early would read as "no rule".
  ip rule show | grep "lookup $UNTRANSLATED_TABLE" >/dev/null ||
    ip rule add iif labhub-cni0 to "$SERVICE_CIDR" lookup "$UNTRANSLATED_TABLE" priority "$UNTRANSLATED_TABLE"
  make_pki "$ip" "$node"
  start_control_plane "$ip"
  start_containerd
  import_images
  start_node "$ip" "$node"
  wait_for "node $node" 120 sh -c "'$BIN/kubectl' --kubeconfig '$STATE/admin.kubeconfig' get node '$node' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
  start_addons "$node" "$ip"
  wait_for "CoreDNS" 120 kubectl -n kube-system rollout status deployment/coredns --timeout=5s
  wait_for "the metrics API (metrics-server)" 60 sh -c "'$BIN/kubectl' --kubeconfig '$STATE/admin.kubeconfig' get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type==\"Available\")].status}' | grep -qx True"
  log "up in $(($(date +%s) - began)) s: node $node at $ip, API https://$ip:$API_PORT"
  print_env
}

stop_all() {
  local c pid
  # The kubelet first, so nothing restarts the pods being stopped.
  for c in metrics-server local-path-provisioner kube-router kubelet kube-proxy kube-scheduler kube-controller-manager; do
    if running "$c"; then kill "$(pid_of "$c")"; fi
  done
  if [ -S "$SOCK" ]; then
    for pid in $(ctr --address "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$SOCK" -n k8s.io tasks kill -s SIGKILL "$pid" >/dev/null 2>&1 || true
    done
    sleep 1
  fi
  for c in containerd kube-apiserver etcd; do
    if running "$c"; then kill "$(pid_of "$c")"; fi
  done
  for c in "${COMPONENTS[@]}"; do
    pid=$(pid_of "$c" 2>/dev/null) || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$RUN/$c.pid"
  done
  # Shims outlive containerd; their containers are already killed.
  pkill -f "containerd-shim-runc-v2 -namespace k8s.io -address $SOCK" 2>/dev/null || true
}

down() {
  stop_all
  ip rule del priority "$UNTRANSLATED_TABLE" 2>/dev/null || true
  ip route flush table "$UNTRANSLATED_TABLE" 2>/dev/null || true
  # What the kubelet, kube-proxy, kube-router and the CNI plugins put in iptables: every chain named KUBE-* or CNI-*
  # and every rule that jumps to one, table by table, leaving the rest (Docker's) as it is.
  local table
  for table in filter nat mangle raw; do
    iptables-save -t "$table" 2>/dev/null | grep -Ev -- '(^:|-A |-j |-g )(KUBE-|CNI-)' | iptables-restore -w 5 2>/dev/null || true
  done
  { ipset list -n 2>/dev/null || true; } | awk '/^(KUBE-|kube-router)/' | while read -r set; do ipset destroy "$set" 2>/dev/null || true; done
  { ip netns list 2>/dev/null || true; } | awk '/^cni-/ {print $1}' | while read -r ns; do ip netns del "$ns" 2>/dev/null || true; done
  ip link del labhub-cni0 2>/dev/null || true
  # Mounts the kubelet and containerd left (volumes, overlay snapshots, network namespaces).
  awk -v s="$STATE" -v r="$RUN" '$2 ~ "^(" s "|" r ")" {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$STATE" "$RUN"
  log "down: removed $STATE and $RUN"
}

status() {
  local c
  for c in "${COMPONENTS[@]}"; do
    if running "$c"; then echo "$c: running (pid $(pid_of "$c"))"; else echo "$c: stopped"; fi
  done
  if running kube-apiserver; then
    kubectl get nodes -o wide; kubectl -n kube-system get pods -o wide
    kubectl get apiservice v1beta1.metrics.k8s.io
  fi
}

case "${1:-}" in
  up) up ;;
  env) print_env ;;
  images) import_images ;;
  status) status ;;
  down) down ;;
  *) echo "usage: $0 up|env|images|status|down" >&2; exit 2 ;;
esac
