#!/usr/bin/env bash
# A real Kubernetes node with a pod network, entirely inside one network namespace this script
# creates, so no address leaves it:
#   netns $NODE_NS      lo + a port-less bridge with the node address ($NODE_IP/24) and a blackhole default
#   control plane       test/k8s/control-plane.sh run with `ip netns exec` (etcd, kube-apiserver on
#                       $NODE_IP so pods reach `kubernetes.default`, controller-manager, scheduler and
#                       its LoadBalancer address assigner for $LB_CIDR)
#   containerd          Debian's containerd (1.6), extracted with dpkg-deb into the cache, never
#                       apt-installed: the package would start a host-wide containerd service on
#                       /run/containerd; this one has its own root/state/socket under $STATE.
#                       restrict_oom_score_adj (no CAP_SYS_RESOURCE here), pod netns pinned under
#                       its state dir, device ownership from the pod's securityContext.
#   runc                Debian's runc (apt)
#   CNI                 Debian containernetworking-plugins: bridge (ikgcni0, gateway, ipMasq,
#                       hairpin) + host-local ($POD_CIDR) + portmap; loopback; br_netfilter's
#                       bridge-nf-call-iptables on in the namespace, so pod -> Service -> pod on the
#                       same bridge is un-NATed on the way back
#   kubelet             cgroupfs under its own cgroup root (/ikg-k8snode), failCgroupV1: false,
#                       clusterDNS = $NODE_IP, unsafe sysctl net.ipv4.ip_forward allowed
#   kube-proxy          iptables mode (Debian's iptables, nft backend) with clusterCIDR = $POD_CIDR
#   cluster DNS         CoreDNS built from the Go module proxy (only the plugins used: bind, errors,
#                       cache, kubernetes), a process in the namespace on $NODE_IP:53
#   images              localhost/ikegate-pause:3.10 (a 20-line Go pause, FROM scratch),
#                       localhost/ikegate-redis:7.0 (Debian's redis-server/-sentinel/-tools + dash,
#                       coreutils, grep, hostname: the chart's redis-start.sh; FROM scratch) and the images given in $NODE_IMAGES, all imported
#                       with `ctr -n k8s.io images import` from `podman save`
#
# Usage: test/k8s/node.sh build     build/caches CoreDNS, pause and the Redis image (+ toolchain)
#        test/k8s/node.sh up        (build) + start everything; waits (bounded) for the node Ready
#        test/k8s/node.sh import IMAGE...   podman save | ctr import into the running node
#        test/k8s/node.sh down      stop everything this script started, remove the namespace+state
#        test/k8s/node.sh env       print the variables the tests use (KUBECONFIG, NODE_NS, ...)
# Env:   IKG_NODE_NS (ikg-k8snode), IKG_NODE_DIR (/tmp/ikg-k8snode), NODE_IMAGES (images to import
#        at up), IKEGATE_REALNODE_CACHE (~/.cache/ikegate-realnode), NODE_READY_TIMEOUT (180 s)
# Needs: root, ip, iptables, podman, runc, containernetworking-plugins, go, openssl, apt-get.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
NODE_NS=${IKG_NODE_NS:-ikg-k8snode}
STATE=${IKG_NODE_DIR:-/tmp/ikg-k8snode}
CACHE=${IKEGATE_REALNODE_CACHE:-$HOME/.cache/ikegate-realnode}
TIMEOUT=${NODE_READY_TIMEOUT:-180}
NODE_IP=10.77.0.1
# The node is named by its address: the API server reaches a kubelet by the node's Hostname address
# first (--kubelet-preferred-address-types), and nothing resolves a host name inside the namespace.
NODE_NAME=$NODE_IP
NODE_LINK=ikgnode0
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.97.0.0/16
LB_CIDR=10.77.2.0/24
CLUSTER_DOMAIN=cluster.local
CGROUP_ROOT=/ikg-k8snode
APORT=6443
COREDNS_VERSION=v1.14.7
PAUSE_IMAGE=localhost/ikegate-pause:3.10
REDIS_IMAGE=localhost/ikegate-redis:7.0
CNI_BIN=/usr/lib/cni
K=$STATE/cp
C=$STATE/containerd
CTRD=$CACHE/containerd-root/usr/bin
# nsenter, not `ip netns exec`: that also unshares the mount namespace (to remount /sys), and the
# kubelet's volume mounts (secrets, configMaps) must be visible to containerd and runc.
NSX=(nsenter "--net=/run/netns/$NODE_NS")

log() { echo "[node] $*" >&2; }
fail() {
  log "ERROR: $*"
  exit 1
}
elapsed() { echo "$((($(date +%s%N) - T0) / 1000000)) ms"; }

k8s_bin() { bash "$HERE/toolchain.sh" etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy helm | tail -1; }

build_coredns() {
  [ -x "$CACHE/bin/coredns" ] && [ "$(cat "$CACHE/bin/.coredns-version" 2>/dev/null)" = "$COREDNS_VERSION" ] && return
  log "building CoreDNS $COREDNS_VERSION from the Go module proxy (bind, errors, cache, kubernetes)"
  local w=$CACHE/work/coredns
  rm -rf "$w"
  mkdir -p "$w" "$CACHE/bin"
  cat >"$w/main.go" <<'EOF'
// CoreDNS with only the plugins the test cluster's Corefile uses.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	"github.com/coredns/coredns/coremain"
)

func init() {
	dnsserver.Directives = []string{"bind", "errors", "cache", "kubernetes"}
}

func main() { coremain.Run() }
EOF
  (
    cd "$w"
    go mod init ikegate.test/coredns >/dev/null 2>&1
    go get "github.com/coredns/coredns@$COREDNS_VERSION" >/dev/null 2>&1
    go mod tidy >/dev/null 2>&1
    CGO_ENABLED=0 go build -trimpath -o "$CACHE/bin/coredns" .
  ) >"$CACHE/coredns-build.log" 2>&1 || {
    tail -20 "$CACHE/coredns-build.log" >&2
    fail "CoreDNS build failed"
  }
  echo "$COREDNS_VERSION" >"$CACHE/bin/.coredns-version"
}

# The recipe's hash, kept as an image label: a changed recipe rebuilds the image.
recipe() { declare -f "$1" | sha256sum | cut -c1-16; }
built() { # image recipe-function
  [ "$(podman image inspect --format '{{index .Labels "io.ikegate.recipe"}}' "$1" 2>/dev/null)" = "$(recipe "$2")" ]
}

build_pause() {
  built "$PAUSE_IMAGE" build_pause && return
  log "building $PAUSE_IMAGE (Go, FROM scratch)"
  local w=$CACHE/work/pause
  rm -rf "$w"
  mkdir -p "$w/rootfs"
  cat >"$w/main.go" <<'EOF'
// The pod sandbox's process: holds the namespaces, reaps orphans, exits on SIGINT/SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
EOF
  (cd "$w" && go mod init ikegate.test/pause >/dev/null 2>&1 && CGO_ENABLED=0 go build -trimpath -o rootfs/pause .) ||
    fail "pause build failed"
  printf 'FROM scratch\nCOPY rootfs/ /\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$w/Containerfile"
  podman build --network=none --pull=never -q --label "io.ikegate.recipe=$(recipe build_pause)" -t "$PAUSE_IMAGE" "$w" >/dev/null
}

build_redis() {
  built "$REDIS_IMAGE" build_redis && return
  log "building $REDIS_IMAGE (Debian redis-server, redis-sentinel, redis-tools, dash, coreutils, grep, hostname; FROM scratch)"
  local w=$CACHE/work/redis p deb pkgs
  rm -rf "$w"
  mkdir -p "$w/rootfs/usr"/{bin,sbin,lib,lib64} "$w/rootfs"/{etc,tmp,data,run} "$CACHE/debs"
  for p in bin sbin lib lib64; do ln -s "usr/$p" "$w/rootfs/$p"; done
  mapfile -t pkgs < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances redis-server redis-sentinel redis-tools dash coreutils grep hostname libc-bin 2>/dev/null |
    grep -v '^ ' | grep -v '^<' | sort -u |
    grep -Ev '^(debconf|cdebconf|dpkg|install-info|tar|adduser|passwd|lsb-base|sysvinit-utils|init-system-helpers|perl-base|debianutils|libdebian-installer4|libnewt0.52|libslang2|libtextwrap1|debconf-2.0|base-files|libpam.*|libaudit.*|libsemanage.*|libsepol.*)$')
  (cd "$CACHE/debs" && apt-get download "${pkgs[@]}" >/dev/null 2>&1) ||
    { apt-get update -q >/dev/null && (cd "$CACHE/debs" && apt-get download "${pkgs[@]}" >/dev/null); }
  for p in "${pkgs[@]}"; do
    deb=$(ls -1 "$CACHE/debs/${p}"_*.deb | sort -V | tail -1)
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$w/rootfs"
  done
  ln -sf dash "$w/rootfs/usr/bin/sh"
  printf 'root:x:0:0:root:/root:/bin/sh\nredis:x:999:999:redis:/data:/bin/sh\n' >"$w/rootfs/etc/passwd"
  printf 'root:x:0:\nredis:x:999:\n' >"$w/rootfs/etc/group"
  chmod 1777 "$w/rootfs/tmp"
  chown 999:999 "$w/rootfs/data"
  rm -rf "$w/rootfs"/usr/share/{doc,man,info,locale,lintian} "$w/rootfs/etc/init.d" "$w/rootfs/etc/redis"
  printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin\nWORKDIR /data\nUSER 999:999\nCMD ["redis-server"]\n' \
    >"$w/Containerfile"
  podman build --network=none --pull=never -q --label "io.ikegate.recipe=$(recipe build_redis)" -t "$REDIS_IMAGE" "$w" >/dev/null
}

build_containerd() {
  [ -x "$CTRD/containerd" ] && return
  log "extracting Debian's containerd into $CACHE/containerd-root"
  mkdir -p "$CACHE/debs"
  (cd "$CACHE/debs" && apt-get download containerd >/dev/null 2>&1) ||
    { apt-get update -q >/dev/null && (cd "$CACHE/debs" && apt-get download containerd >/dev/null); }
  rm -rf "$CACHE/containerd-root"
  dpkg-deb -x "$(ls -1 "$CACHE"/debs/containerd_*.deb | sort -V | tail -1)" "$CACHE/containerd-root"
}

build() {
  command -v podman >/dev/null || fail "podman missing (apt-get install podman runc)"
  command -v runc >/dev/null || fail "runc missing"
  [ -x "$CNI_BIN/bridge" ] || fail "$CNI_BIN/bridge missing (apt-get install containernetworking-plugins)"
  command -v iptables >/dev/null || fail "iptables missing"
  k8s_bin >/dev/null
  build_containerd
  build_coredns
  build_pause
  build_redis
}

pids_of() { [ -f "$STATE/pids" ] && awk -v n="$1" '$2==n{print $1}' "$STATE/pids" || true; }

start() { # name cmd...   (in the namespace, own session, logs under $STATE/logs)
  local name=$1
  shift
  setsid "${NSX[@]}" "$@" </dev/null >"$STATE/logs/$name.log" 2>&1 &
  echo "$! $name" >>"$STATE/pids"
}

alive() { local p; p=$(pids_of "$1" | tail -1); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

wait_for() { # what component cmd...
  local what=$1 comp=$2 i
  shift 2
  for ((i = 0; i < TIMEOUT * 2; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    alive "$comp" || { tail -30 "$STATE/logs/$comp.log" >&2; fail "$comp exited while waiting for $what"; }
    sleep 0.5
  done
  tail -30 "$STATE/logs/$comp.log" >&2
  fail "timed out after ${TIMEOUT}s waiting for $what"
}

ctr_() { "${NSX[@]}" "$CTRD/ctr" -a "$C/containerd.sock" -n k8s.io "$@"; }

import_images() { # image...
  local i f
  mkdir -p "$STATE/images"
  for i in "$@"; do
    f=$STATE/images/$(echo "$i" | tr '/:' '__').tar
    rm -f "$f"
    podman save --format docker-archive -o "$f" "$i" >/dev/null 2>&1 || fail "podman save $i failed"
    ctr_ images import "$f" >/dev/null || fail "ctr import $i failed"
    rm -f "$f"
    log "imported $i"
  done
}

up() {
  [ "$(id -u)" = 0 ] || fail "needs root"
  T0=$(date +%s%N)
  build
  local B
  B=$(k8s_bin)
  log "toolchain + images ready ($(elapsed))"
  down_all quiet
  mkdir -p "$STATE/logs" "$C" "$STATE/cni/net.d" "$STATE/kubelet" "$STATE/pki"
  : >"$STATE/pids"

  # A Kubernetes node forwards in its root namespace, and the pods' namespaces inherit IPv4
  # forwarding from the root namespace (net.core.devconf_inherit_init_net=0), not from $NODE_NS:
  # workers route tunnel traffic, and their /proc/sys is read-only. Restored by `down`.
  cat /proc/sys/net/ipv4/ip_forward >"$STATE/host-ip_forward.before"
  echo 1 >/proc/sys/net/ipv4/ip_forward

  # the namespace: every non-loopback address of the cluster lives in it
  ip netns add "$NODE_NS"
  ip -n "$NODE_NS" link set lo up
  # a bridge without ports holds the node address (this kernel has no dummy driver)
  ip -n "$NODE_NS" link add "$NODE_LINK" type bridge
  ip -n "$NODE_NS" addr add "$NODE_IP/24" dev "$NODE_LINK"
  ip -n "$NODE_NS" link set "$NODE_LINK" up
  ip -n "$NODE_NS" route add blackhole default
  # a route for Service addresses, so connections from the node itself pass the route lookup that
  # precedes kube-proxy's OUTPUT DNAT (the blackhole would refuse them with EINVAL)
  ip -n "$NODE_NS" route add "$SERVICE_CIDR" dev "$NODE_LINK"
  "${NSX[@]}" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables' ||
    fail "cannot set ip_forward / bridge-nf-call-iptables in $NODE_NS"

  # control plane (toolchain's script), API server on the node address
  "${NSX[@]}" env K8S_BIN="$B" K8S_DIR="$K" K8S_APISERVER_PORT=$APORT K8S_ETCD_PORT=2379 \
    K8S_BIND_ADDRESS="$NODE_IP" K8S_SERVICE_CIDR="$SERVICE_CIDR" K8S_KWOK_NODES=0 \
    K8S_LB_SUBNET="$LB_CIDR" K8S_READY_TIMEOUT=120 bash "$HERE/control-plane.sh" up >"$STATE/logs/control-plane.out" 2>&1 ||
    { tail -30 "$STATE/logs/control-plane.out" >&2; fail "control plane did not start"; }
  local KC=$K/kubeconfig
  log "control plane ready ($(elapsed))"

  # containerd
  cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$C/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # no CAP_SYS_RESOURCE on this machine: runc cannot lower oom_score_adj below the parent's
  restrict_oom_score_adj = true
  # pod network namespaces under the state dir, not /var/run/netns of the host
  netns_mounts_under_state_dir = true
  # devices (e.g. /dev/net/tun from a device plugin) owned by the pod's runAsUser/runAsGroup
  device_ownership_from_security_context = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_unprivileged_ports = false
  # ping (helm test) uses ICMP datagram sockets: net.ipv4.ping_group_range = 0 2147483647 (containerd 2.0's default)
  enable_unprivileged_icmp = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
EOF
  cat >"$STATE/cni/net.d/10-ikg.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "ikg-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "ikgcni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$STATE/cni/ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
  start containerd env PATH="$CTRD:/usr/sbin:/usr/bin:/sbin:/bin" "$CTRD/containerd" --config "$C/config.toml"
  wait_for "containerd socket" containerd test -S "$C/containerd.sock"
  import_images "$PAUSE_IMAGE" "$REDIS_IMAGE" ${NODE_IMAGES:-}
  log "containerd + images ready ($(elapsed))"

  # kubelet: client certificate CN=system:node:NAME signed by the control plane's CA
  local P=$K/pki
  (
    cd "$STATE/pki"
    openssl req -newkey rsa:2048 -nodes -keyout node.key -out node.csr -subj "/O=system:nodes/CN=system:node:$NODE_NAME" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >node.ext
    openssl x509 -req -in node.csr -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -out node.crt -days 7 -extfile node.ext 2>/dev/null
  )
  sed -e "s#$P/admin.crt#$STATE/pki/node.crt#; s#$P/admin.key#$STATE/pki/node.key#" "$KC" >"$STATE/kubelet.kubeconfig"
  cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$P/ca.crt"}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failCgroupV1: false
failSwapOn: false
clusterDNS: [$NODE_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: ""
containerRuntimeEndpoint: unix://$C/containerd.sock
imageServiceEndpoint: unix://$C/containerd.sock
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
allowedUnsafeSysctls: ["net.ipv4.ip_forward"]
maxPods: 40
EOF
  # the kubelet's cgroup root must exist in every hierarchy (cgroup v1 "hybrid" here); a cpuset
  # child starts with no CPUs and memory nodes, so it gets its parent's
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "${h}cgroup.procs" ] || continue
    mkdir -p "${h%/}$CGROUP_ROOT"
    if [ -f "${h}cpuset.cpus" ]; then
      cat "${h}cpuset.cpus" >"${h%/}$CGROUP_ROOT/cpuset.cpus"
      cat "${h}cpuset.mems" >"${h%/}$CGROUP_ROOT/cpuset.mems"
    fi
  done
  start kubelet "$B/kubelet" --config="$STATE/kubelet.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
    --root-dir="$STATE/kubelet" --cert-dir="$STATE/kubelet-pki" --hostname-override="$NODE_NAME" \
    --node-ip="$NODE_IP"

  # kube-proxy
  cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: "$KC"}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start kube-proxy "$B/kube-proxy" --config="$STATE/kube-proxy.yaml"

  # cluster DNS
  cat >"$STATE/Corefile" <<EOF
.:53 {
  bind $NODE_IP
  errors
  cache 5
  kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
    kubeconfig $KC
    pods insecure
    ttl 5
    fallthrough in-addr.arpa ip6.arpa
  }
}
EOF
  start coredns "$CACHE/bin/coredns" -conf "$STATE/Corefile"

  local kc=("${NSX[@]}" "$B/kubectl" --kubeconfig "$KC")
  wait_for "node $NODE_NAME Ready" kubelet "${kc[@]}" wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
  alive kube-proxy || { tail -30 "$STATE/logs/kube-proxy.log" >&2; fail "kube-proxy exited"; }
  wait_for "CoreDNS answers kubernetes.default" coredns \
    "${NSX[@]}" python3 -c "
import socket,struct,sys
q=struct.pack('>HHHHHH',1,0x100,1,0,0,0)+b''.join(bytes([len(p)])+p.encode() for p in 'kubernetes.default.svc.$CLUSTER_DOMAIN'.split('.'))+b'\0'+struct.pack('>HH',1,1)
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(1); s.sendto(q,('$NODE_IP',53)); r=s.recv(512)
sys.exit(0 if (r[3]&15)==0 and struct.unpack('>H',r[6:8])[0]>0 else 1)"
  env_file "$B" >"$STATE/env"
  log "node $NODE_NAME Ready in $NODE_NS, pod CIDR $POD_CIDR, services $SERVICE_CIDR, DNS $NODE_IP ($(elapsed))"
  cat "$STATE/env"
}

env_file() {
  echo "KUBECONFIG=$K/kubeconfig"
  echo "K8S_BIN=$1"
  echo "NODE_NS=$NODE_NS"
  echo "NODE_NAME=$NODE_NAME"
  echo "NODE_IP=$NODE_IP"
  echo "POD_CIDR=$POD_CIDR"
  echo "SERVICE_CIDR=$SERVICE_CIDR"
  echo "LB_CIDR=$LB_CIDR"
  echo "NODE_STATE=$STATE"
}

# Stops every process recorded in $STATE/pids (kubelet first, so it does not restart containers),
# kills the containers' tasks through containerd, then the rest, then the control plane; unmounts
# what the kubelet and containerd mounted under $STATE, removes the cgroups under $CGROUP_ROOT and
# the namespace.
down_all() {
  local quiet=${1:-} pid name id
  if [ -f "$STATE/pids" ]; then
    for pid in $(pids_of kubelet); do kill "$pid" 2>/dev/null || true; done
    sleep 1
    if alive containerd; then
      for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
      for _ in $(seq 1 20); do
        [ -z "$(ctr_ tasks ls -q 2>/dev/null | head -1)" ] && break
        for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$id" >/dev/null 2>&1 || true; done
        sleep 0.5
      done
      for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$id" >/dev/null 2>&1 || true; done
    fi
    tac "$STATE/pids" | while read -r pid name; do
      kill "$pid" 2>/dev/null || continue
      for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
      done
      kill -9 "$pid" 2>/dev/null || true
      [ -n "$quiet" ] || log "stopped $name ($pid)"
    done
    rm -f "$STATE/pids"
  fi
  # shims left by a killed containerd (their command line names our socket's directory)
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $C/containerd.sock" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  if [ -d "$K" ] && ip netns list 2>/dev/null | grep -qw "$NODE_NS"; then
    "${NSX[@]}" env K8S_DIR="$K" bash "$HERE/control-plane.sh" down >/dev/null 2>&1 || true
  fi
  if [ -d "$STATE" ]; then
    # innermost first: pod volumes, container rootfs, netns pins
    awk -v s="$STATE" 'index($2, s) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
  fi
  local d
  for d in /sys/fs/cgroup/*"$CGROUP_ROOT"; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  ip netns del "$NODE_NS" 2>/dev/null || true
  if [ -f "$STATE/host-ip_forward.before" ]; then
    cat "$STATE/host-ip_forward.before" >/proc/sys/net/ipv4/ip_forward || true
  fi
  rm -rf "$STATE"
  [ -n "$quiet" ] || log "down: $NODE_NS and $STATE removed"
}

case ${1:-} in
  build) build ;;
  up)
    trap 'rc=$?; [ $rc = 0 ] || { log "up failed; logs in $STATE/logs were:"; for f in "$STATE"/logs/*.log; do echo "== $f" >&2; tail -5 "$f" >&2; done 2>/dev/null; down_all quiet; }' EXIT
    up
    ;;
  import)
    shift
    import_images "$@"
    ;;
  down) down_all ;;
  env) cat "$STATE/env" ;;
  *)
    echo "usage: $0 build|up|import IMAGE...|down|env" >&2
    exit 2
    ;;
esac
