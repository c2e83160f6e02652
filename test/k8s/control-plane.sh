#!/usr/bin/env bash
# A real Kubernetes control plane for tests: etcd + kube-apiserver + kube-controller-manager +
# kube-scheduler, optionally kwok fake nodes and a LoadBalancer address assigner. Certificates
# are generated here; everything listens on 127.0.0.1 (or the address given), so the script also
# works inside a network namespace (`ip netns exec NS test/k8s/control-plane.sh up`).
#
# Usage: test/k8s/control-plane.sh up|down|status
#   up      stops a previous instance in the same K8S_DIR, starts everything, waits (bounded) until
#           it is ready; prints `KUBECONFIG=$K8S_DIR/kubeconfig` as the last stdout line
#   down    stops every process that `up` started (pid file, checked against its command line)
#           and removes K8S_DIR
#   status  exit 0 if the API server answers /readyz
# Env (all optional):
#   K8S_BIN               binaries (default: the directory test/k8s/toolchain.sh prints; not built here)
#   K8S_APISERVER_PORT    16443      K8S_ETCD_PORT 12379, K8S_ETCD_PEER_PORT (K8S_ETCD_PORT+1)
#   K8S_DIR               state dir  (default ${TMPDIR:-/tmp}/ikegate-k8s-cp-$K8S_APISERVER_PORT)
#   K8S_BIND_ADDRESS      127.0.0.1  where etcd and kube-apiserver listen
#   K8S_ADVERTISE_ADDRESS the bind address; when it is not a loopback one, the endpoint
#                         reconciler is on, so in-cluster clients reach `kubernetes.default`
#   K8S_SERVICE_CIDR      10.96.0.0/16 (its first address goes into the serving certificate)
#   K8S_CLUSTER_CIDR      unset; set it to let the controller-manager allocate node pod CIDRs
#   K8S_KWOK_NODES        0          fake nodes (kwok): Ready nodes whose bound pods go Running/Ready
#                                    (no container runs, no probe is executed); labelled with
#                                    topology.kubernetes.io/zone=zone-a|b|c in turn
#   K8S_KWOK_PORT         K8S_APISERVER_PORT+2 (kwok's own metrics/debug listener)
#   K8S_LB_SUBNET         unset; a /24 like 198.51.100.0/24: LoadBalancer Services get
#                         status.loadBalancer.ingress addresses from it (what a cloud's
#                         controller does; nothing is routed to them)
#   K8S_OWNER_PID         unset; when set, everything is stopped once that process exits
#   K8S_READY_TIMEOUT     90 (seconds for each wait)
# Files: $K8S_DIR/kubeconfig (admin, system:masters), $K8S_DIR/pki/{ca.crt,ca.key,...},
#        $K8S_DIR/logs/<component>.log, $K8S_DIR/pids.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
APORT=${K8S_APISERVER_PORT:-16443}
EPORT=${K8S_ETCD_PORT:-12379}
EPEER=${K8S_ETCD_PEER_PORT:-$((EPORT + 1))}
KWOK_PORT=${K8S_KWOK_PORT:-$((APORT + 2))}
K=${K8S_DIR:-${TMPDIR:-/tmp}/ikegate-k8s-cp-$APORT}
ADDR=${K8S_BIND_ADDRESS:-127.0.0.1}
ADV=${K8S_ADVERTISE_ADDRESS:-$ADDR}
SVC_CIDR=${K8S_SERVICE_CIDR:-10.96.0.0/16}
NODES=${K8S_KWOK_NODES:-0}
TIMEOUT=${K8S_READY_TIMEOUT:-90}
MARK=.ikegate-k8s-control-plane

log() { echo "[control-plane] $*" >&2; }
fail() {
  log "ERROR: $*"
  exit 1
}

bin_dir() {
  if [ -n "${K8S_BIN:-}" ]; then echo "$K8S_BIN"; else
    echo "${IKEGATE_K8S_CACHE:-$HOME/.cache/ikegate-k8s}/bin"
  fi
}

# Only PIDs this script recorded, and only while their command line still names the binary.
ours() { # pid name
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  case $2 in
    lb-assigner | owner-watch) [[ $cmd == *control-plane.sh* ]] ;;
    *) [[ $cmd == *"$2"* ]] ;;
  esac
}

down() {
  [ -f "$K/pids" ] || { [ -f "$K/$MARK" ] && rm -rf "$K"; return 0; }
  local pid name
  # newest first: kwok and the controllers before the API server, etcd last
  tac "$K/pids" | while read -r pid name; do
    [ "$pid" = "$$" ] && continue
    ours "$pid" "$name" || continue
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped $name ($pid)"
  done
  rm -f "$K/pids"
  [ -f "$K/$MARK" ] && rm -rf "$K"
  return 0
}

alive() { # name
  local pid
  pid=$(awk -v n="$1" '$2==n{print $1}' "$K/pids" | tail -1)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

dead() { # name
  log "$1 exited; last lines of $K/logs/$1.log:"
  tail -25 "$K/logs/$1.log" >&2 || true
  exit 1
}

start() { # name cmd...   (own session, no inherited stdio, so callers' pipes close)
  local name=$1; shift
  setsid "$@" </dev/null >"$K/logs/$name.log" 2>&1 &
  echo "$! $name" >>"$K/pids"
}

first_ip() { # CIDR -> first host address (IPv4)
  python3 -c 'import ipaddress,sys; print(next(ipaddress.ip_network(sys.argv[1], strict=False).hosts()))' "$1"
}

gen_certs() {
  local d=$K/pki svc_ip
  mkdir -p "$d"
  svc_ip=$(first_ip "$SVC_CIDR")
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 7 -subj "/CN=ikegate-test-ca" 2>/dev/null
    sign() { # name subject [san]
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      if [ -n "${3:-}" ]; then
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" >"$1.ext"
      else
        printf 'extendedKeyUsage=clientAuth\n' >"$1.ext"
      fi
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 7 \
        -extfile "$1.ext" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    local san="IP:127.0.0.1,IP:$svc_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    [ "$ADDR" = 127.0.0.1 ] || [ "$ADDR" = 0.0.0.0 ] || san="$san,IP:$ADDR"
    [ "$ADV" = "$ADDR" ] || san="$san,IP:$ADV"
    sign apiserver "/CN=kube-apiserver" "$san"
    sign admin "/O=system:masters/CN=admin"
    sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    sign kcm "/CN=system:kube-controller-manager"
    sign sched "/CN=system:kube-scheduler"
    sign kwok "/O=system:masters/CN=kwok"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  ) || fail "certificate generation failed (openssl)"
}

kubeconfig() { # user -> file
  local server=$ADV
  [ "$ADDR" = 127.0.0.1 ] && server=127.0.0.1
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ikegate-test
  cluster:
    server: https://$server:$APORT
    certificate-authority: $K/pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $K/pki/$1.crt
    client-key: $K/pki/$1.key
contexts:
- name: $1
  context: {cluster: ikegate-test, user: $1}
current-context: $1
EOF
}

# Polls `cmd` every 0.25 s until it succeeds, TIMEOUT seconds at most; `component` must stay alive.
wait_for() { # what component cmd...
  local what=$1 comp=$2 i
  shift 2
  for ((i = 0; i < TIMEOUT * 4; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    alive "$comp" || dead "$comp"
    sleep 0.25
  done
  log "timed out after ${TIMEOUT}s waiting for $what; last lines of $K/logs/$comp.log:"
  tail -25 "$K/logs/$comp.log" >&2 || true
  exit 1
}

port_free() { # port
  ! (exec 3<>"/dev/tcp/$ADDR/$1") 2>/dev/null
}

up() {
  local B
  B=$(bin_dir)
  local b
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$B/$b" ] || fail "$B/$b missing: run test/k8s/toolchain.sh"
  done
  [ "$NODES" = 0 ] || [ -x "$B/kwok" ] || fail "$B/kwok missing: run test/k8s/toolchain.sh kwok"
  for p in "$APORT" "$EPORT" "$EPEER"; do
    port_free "$p" || fail "port $ADDR:$p is in use (set K8S_APISERVER_PORT / K8S_ETCD_PORT)"
  done
  mkdir -p "$K/logs"
  touch "$K/$MARK"
  : >"$K/pids"
  gen_certs
  for u in admin kcm sched kwok; do kubeconfig "$u" >"$K/kubeconfig-$u"; done
  cp "$K/kubeconfig-admin" "$K/kubeconfig"
  local P=$K/pki t0
  t0=$(date +%s%N)

  start etcd "$B/etcd" --name ikegate-test --data-dir "$K/etcd-data" \
    --listen-client-urls "http://$ADDR:$EPORT" --advertise-client-urls "http://$ADDR:$EPORT" \
    --listen-peer-urls "http://$ADDR:$EPEER" --initial-advertise-peer-urls "http://$ADDR:$EPEER" \
    --initial-cluster "ikegate-test=http://$ADDR:$EPEER" \
    --unsafe-no-fsync --log-level warn
  wait_for "etcd /health" etcd bash -c "curl -s --max-time 1 http://$ADDR:$EPORT/health | grep -q '\"health\":\"true\"'"

  local reconciler=(--endpoint-reconciler-type=none)
  # the lease reconciler refuses loopback addresses ("may not be in the loopback range")
  case $ADV in 127.* | 0.0.0.0) ;; *) reconciler=() ;; esac
  start kube-apiserver "$B/kube-apiserver" \
    --etcd-servers="http://$ADDR:$EPORT" \
    --bind-address="$ADDR" --advertise-address="$([ "$ADV" = 0.0.0.0 ] && echo 127.0.0.1 || echo "$ADV")" \
    --secure-port="$APORT" \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
    --client-ca-file="$P/ca.crt" \
    --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$P/apiserver-kubelet-client.key" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --service-cluster-ip-range="$SVC_CIDR" \
    --authorization-mode=Node,RBAC \
    --allow-privileged=true \
    --enable-priority-and-fairness=false \
    --profiling=false \
    "${reconciler[@]}"
  wait_for "kube-apiserver /readyz" kube-apiserver \
    curl -sf --max-time 2 --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" \
    "https://$([ "$ADDR" = 0.0.0.0 ] && echo 127.0.0.1 || echo "$ADDR"):$APORT/readyz"
  log "etcd + kube-apiserver ready in $((($(date +%s%N) - t0) / 1000000)) ms"

  local cidr=()
  [ -z "${K8S_CLUSTER_CIDR:-}" ] || cidr=(--allocate-node-cidrs=true --cluster-cidr="$K8S_CLUSTER_CIDR")
  start kube-controller-manager "$B/kube-controller-manager" \
    --kubeconfig="$K/kubeconfig-kcm" \
    --authentication-kubeconfig="$K/kubeconfig-kcm" --authorization-kubeconfig="$K/kubeconfig-kcm" \
    --bind-address=127.0.0.1 --secure-port=0 \
    --root-ca-file="$P/ca.crt" --service-account-private-key-file="$P/sa.key" \
    --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
    --service-cluster-ip-range="$SVC_CIDR" \
    --use-service-account-credentials=true --controllers='*' --leader-elect=false \
    "${cidr[@]}"
  start kube-scheduler "$B/kube-scheduler" --kubeconfig="$K/kubeconfig-sched" \
    --authentication-kubeconfig="$K/kubeconfig-sched" --authorization-kubeconfig="$K/kubeconfig-sched" \
    --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false

  local kc=("$B/kubectl" --kubeconfig "$K/kubeconfig")
  # pods are refused until the namespace's default ServiceAccount exists
  wait_for "the default ServiceAccount" kube-controller-manager "${kc[@]}" -n default get serviceaccount default
  alive kube-scheduler || dead kube-scheduler

  if [ "$NODES" != 0 ]; then
    local stages=$K/kwok-stages.yaml f
    : >"$stages"
    for f in "$B"/kwok-stages/*.yaml; do
      [ -f "$f" ] || fail "$B/kwok-stages/ is empty: run test/k8s/toolchain.sh kwok"
      { echo "---"; cat "$f"; } >>"$stages"
    done
    start kwok "$B/kwok" --kubeconfig="$K/kubeconfig-kwok" -c "$stages" \
      --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
      --server-address="127.0.0.1:$KWOK_PORT" --node-lease-duration-seconds=40
    local i zones=(a b c)
    for ((i = 0; i < NODES; i++)); do
      cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake}
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/region: test
    topology.kubernetes.io/zone: zone-${zones[i % 3]}
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
EOF
    done | "${kc[@]}" apply -f - >/dev/null || fail "creating the kwok nodes failed"
    wait_for "$NODES kwok node(s) Ready" kwok \
      "${kc[@]}" wait --for=condition=Ready node -l type=kwok --timeout=1s
    log "kwok: $NODES fake node(s) Ready"
  fi

  if [ -n "${K8S_LB_SUBNET:-}" ]; then
    local prefix=${K8S_LB_SUBNET%.*}
    [[ $K8S_LB_SUBNET == */24 ]] || fail "K8S_LB_SUBNET must be a /24, got $K8S_LB_SUBNET"
    start lb-assigner bash "$HERE/control-plane.sh" lb-assign "$prefix" "$B/kubectl" "$K/kubeconfig"
  fi
  if [ -n "${K8S_OWNER_PID:-}" ]; then
    start owner-watch env K8S_DIR="$K" bash "$HERE/control-plane.sh" owner-watch "$K8S_OWNER_PID"
  fi
  log "ready in $((($(date +%s%N) - t0) / 1000000)) ms (state: $K)"
  echo "KUBECONFIG=$K/kubeconfig"
}

# Plays the cloud's load-balancer controller: every LoadBalancer Service without an address gets
# the next one of PREFIX.10-250 in status.loadBalancer.ingress. Runs until `down` stops it.
lb_assign() { # prefix kubectl kubeconfig
  local prefix=$1 kc=("$2" --kubeconfig "$3") next=10 ns name ip
  while :; do
    while read -r ns name ip; do
      [ -n "$name" ] && [ -z "$ip" ] || continue
      [ "$next" -le 250 ] || next=10
      "${kc[@]}" -n "$ns" patch service "$name" --subresource=status --type=merge \
        -p "{\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"$prefix.$next\",\"ipMode\":\"VIP\"}]}}}" &&
        next=$((next + 1))
    done < <("${kc[@]}" get services -A -o \
      'jsonpath={range .items[?(@.spec.type=="LoadBalancer")]}{.metadata.namespace} {.metadata.name} {.status.loadBalancer.ingress[0].ip}{"\n"}{end}' 2>/dev/null)
    sleep 1
  done
}

case ${1:-} in
  up)
    down
    trap 'rc=$?; [ $rc = 0 ] || { log "up failed; stopping what was started"; down; }' EXIT
    up
    ;;
  down) down ;;
  status)
    curl -sf --max-time 2 --cacert "$K/pki/ca.crt" --cert "$K/pki/admin.crt" --key "$K/pki/admin.key" \
      "https://$([ "$ADDR" = 0.0.0.0 ] && echo 127.0.0.1 || echo "$ADDR"):$APORT/readyz" >/dev/null
    ;;
  lb-assign) lb_assign "$2" "$3" "$4" ;;
  owner-watch)
    while kill -0 "$2" 2>/dev/null; do sleep 2; done
    log "owner $2 exited; stopping the control plane"
    down
    ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
