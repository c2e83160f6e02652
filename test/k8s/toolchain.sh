#!/usr/bin/env bash
# Kubernetes / Helm / Terraform test toolchain, built from the Go module proxy (no other
# download), pinned, cached and reused.
#
# Usage:   test/k8s/toolchain.sh [component ...]      (no component = all)
# Output:  the binary directory, on the LAST line of stdout (progress and timings go to stderr):
#            ${IKEGATE_K8S_CACHE:-$HOME/.cache/ikegate-k8s}/bin
# Components and what lands in that directory:
#   helm                     helm (version ldflags set, so .Capabilities.KubeVersion is right)
#   etcd                     etcd
#   kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy
#                            one throwaway module requiring k8s.io/kubernetes, so after the first
#                            binary the others reuse the module graph and the build cache
#   kwok                     kwok + kwok-stages/*.yaml (the node/pod stages from its module)
#   tf-helm-provider         terraform-mirror/ (filesystem mirror for terraform and tofu) with
#   tf-kubernetes-provider   hashicorp/helm v1.3.2 and hashicorp/kubernetes v1.13.4 (the newest the
#                            proxy serves) + terraform.tfrc (set TF_CLI_CONFIG_FILE to it)
#   crds                     crds/*.yaml: ServiceMonitor, PodMonitor, PrometheusRule
#                            CustomResourceDefinitions from the prometheus-operator module
#   tofu                     OpenTofu (only when asked, or for `all` when no `terraform` is on PATH)
# Idempotent: a component whose stamp (.stamp-<name>) names the pinned version is skipped.
# Concurrency: one flock per component (one for all k8s binaries), so concurrent callers wait
# instead of building the same thing twice. Build logs: <cache>/logs/<component>.log;
# timings are appended to <cache>/logs/build-times.log.
set -euo pipefail

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.21.4
KWOK_VERSION=v0.8.0
TF_HELM_VERSION=v1.3.2
TF_KUBERNETES_VERSION=v1.13.4
PROM_OPERATOR_VERSION=v0.85.0
TOFU_VERSION=v1.12.6

CACHE=${IKEGATE_K8S_CACHE:-$HOME/.cache/ikegate-k8s}
BIN=$CACHE/bin
WORK=$CACHE/work
LOGS=$CACHE/logs
LOCKS=$CACHE/locks
mkdir -p "$BIN" "$WORK" "$LOGS" "$LOCKS"

K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
ALL=(etcd "${K8S_CMDS[@]}" helm kwok crds tf-helm-provider tf-kubernetes-provider)

log() { echo "[toolchain] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "go not found on PATH (needed to build from the Go module proxy)"
command -v flock >/dev/null 2>&1 || die "flock not found (util-linux)"

# The stamp records the pinned version; the artefact must also still be there.
fresh() { # name version artefact
  [ -e "$3" ] && [ "$(cat "$BIN/.stamp-$1" 2>/dev/null)" = "$2" ]
}
stamp() { echo "$2" > "$BIN/.stamp-$1"; }

# Runs "$@" with its output in logs/<name>.log; on failure shows the log's tail and exits.
logged() { # name cmd...
  local name=$1; shift
  if ! "$@" >>"$LOGS/$name.log" 2>&1; then
    log "building $name failed; last lines of $LOGS/$name.log:"
    tail -30 "$LOGS/$name.log" >&2
    exit 1
  fi
}

timed() { # name seconds
  log "$1: built in $2s"
  echo "$(date -u +%FT%TZ) $1 $2s" >> "$LOGS/build-times.log"
}

gobuild() { nice -n 19 go build -trimpath "$@"; }
tidy() { nice -n 19 go mod tidy; }

build_k8s() { # targets...
  local want=() t
  for t in "$@"; do fresh "$t" "$K8S_VERSION" "$BIN/$t" || want+=("$t"); done
  [ ${#want[@]} -gt 0 ] || return 0
  local w=$WORK/k8s-$K8S_VERSION
  mkdir -p "$w"
  # k8s.io/kubernetes requires its staging repos at v0.0.0 with ./staging replaces that go
  # ignores for a dependency; requiring it from a throwaway module that replaces every
  # staging repo with its published v0.Y.Z tag makes the graph resolvable.
  if [ ! -f "$w/.tidy-ok" ]; then
    local s; s=$(date +%s)
    (
      cd "$w"
      local modfile gover staging sv=v0.${K8S_VERSION#v1.}
      modfile=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
      [ -f "$modfile" ] || { echo "no go.mod for k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
      gover=$(awk '$1=="go"{print $2; exit}' "$modfile")
      staging=$(awk '/=> \.\/staging\/src\//{print $1}' "$modfile" | sort -u)
      {
        printf 'module ikegate.test/k8sbuild\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$gover" "$K8S_VERSION"
        for m in $staging; do printf '\t%s => %s %s\n' "$m" "$m" "$sv"; done
        printf ')\n'
      } > go.mod
      # every command in the tools file, so one `go mod tidy` serves all of them
      {
        printf '//go:build tools\npackage tools\nimport (\n'
        for c in "${K8S_CMDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
        printf ')\n'
      } > tools.go
      tidy
    ) >>"$LOGS/k8s.log" 2>&1 || { log "k8s module setup failed:"; tail -30 "$LOGS/k8s.log" >&2; exit 1; }
    touch "$w/.tidy-ok"
    timed "k8s-module-$K8S_VERSION" $(( $(date +%s) - s ))
  fi
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
    -X k8s.io/component-base/version.gitMajor=1 \
    -X k8s.io/component-base/version.gitMinor=$(echo "${K8S_VERSION#v1.}" | cut -d. -f1) \
    -X k8s.io/component-base/version.gitTreeState=clean \
    -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  for t in "${want[@]}"; do
    local s; s=$(date +%s)
    log "building $t $K8S_VERSION"
    (cd "$w" && logged k8s gobuild -ldflags "$ld" -o "$BIN/$t.tmp" "k8s.io/kubernetes/cmd/$t")
    mv -f "$BIN/$t.tmp" "$BIN/$t"
    stamp "$t" "$K8S_VERSION"
    timed "$t" $(( $(date +%s) - s ))
  done
}

build_etcd() {
  fresh etcd "$ETCD_VERSION" "$BIN/etcd" && return 0
  local w=$WORK/etcd-$ETCD_VERSION s; s=$(date +%s)
  mkdir -p "$w"
  # go.etcd.io/etcd/server/v3 has no main package; the root module's main.go is this one line
  # (and that root module has ./ replaces, so `go install` refuses it).
  printf 'module ikegate.test/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$w/go.mod"
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > "$w/main.go"
  log "building etcd $ETCD_VERSION"
  (cd "$w" && logged etcd tidy && logged etcd gobuild -ldflags "-s -w" -o "$BIN/etcd.tmp" .)
  mv -f "$BIN/etcd.tmp" "$BIN/etcd"
  stamp etcd "$ETCD_VERSION"
  timed etcd $(( $(date +%s) - s ))
}

build_helm() {
  fresh helm "$HELM_VERSION" "$BIN/helm" && return 0
  local w=$WORK/helm-$HELM_VERSION s maj=${HELM_VERSION%%.*}; s=$(date +%s)
  mkdir -p "$w"
  printf 'module ikegate.test/helmbuild\n\ngo 1.26\n' > "$w/go.mod"
  printf '//go:build tools\npackage tools\nimport _ "helm.sh/helm/%s/cmd/helm"\n' "$maj" > "$w/tools.go"
  log "building helm $HELM_VERSION"
  (
    cd "$w"
    logged helm nice -n 19 go get "helm.sh/helm/$maj@$HELM_VERSION"
    logged helm tidy
    # Without these ldflags (helm's Makefile sets them) helm reports KubeVersion v1.20.0 and
    # refuses charts with a kubeVersion constraint. The minor is the client-go it builds with.
    local cg kmin p=helm.sh/helm/$maj ld
    cg=$(go list -m -f '{{.Version}}' k8s.io/client-go)
    kmin=$(echo "$cg" | cut -d. -f2)
    if [ "$maj" = v3 ]; then
      ld="-X $p/internal/version.version=$HELM_VERSION -X $p/internal/version.gitTreeState=clean"
      ld="$ld -X $p/pkg/lint/rules.k8sVersionMajor=1 -X $p/pkg/lint/rules.k8sVersionMinor=$kmin"
      ld="$ld -X $p/pkg/chartutil.k8sVersionMajor=1 -X $p/pkg/chartutil.k8sVersionMinor=$kmin"
    else
      local mk v; mk=$(go list -m -f '{{.Dir}}' "$p")/Makefile
      ld="-X $p/internal/version.version=$HELM_VERSION"
      for v in $(grep -o "$p/[a-z/]*\.k8sVersionM[a-z]*" "$mk" | sort -u); do
        case $v in *Major) ld="$ld -X $v=1" ;; *Minor) ld="$ld -X $v=$kmin" ;; esac
      done
    fi
    logged helm gobuild -ldflags "-s -w $ld" -o "$BIN/helm.tmp" "$p/cmd/helm"
  )
  mv -f "$BIN/helm.tmp" "$BIN/helm"
  stamp helm "$HELM_VERSION"
  timed helm $(( $(date +%s) - s ))
}

build_kwok() {
  # the stages' own revision: bump it when the edits below change
  local stages_rev=$KWOK_VERSION+2
  fresh kwok "$stages_rev" "$BIN/kwok-stages/pod-ready.yaml" && [ -x "$BIN/kwok" ] && return 0
  local s; s=$(date +%s)
  if ! fresh kwok-bin "$KWOK_VERSION" "$BIN/kwok"; then
    log "building kwok $KWOK_VERSION"
    (cd "$WORK" && logged kwok env GOBIN="$WORK/gobin" nice -n 19 go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
    mv -f "$WORK/gobin/kwok" "$BIN/kwok"
    stamp kwok-bin "$KWOK_VERSION"
  fi
  # kwok without stages exits ("no stages found"); the stages ship in its module's kustomize/
  local d; d=$(cd "$WORK" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -d "$d/kustomize/stage" ] || die "kwok module has no kustomize/stage ($d)"
  rm -rf "$BIN/kwok-stages"; mkdir -p "$BIN/kwok-stages"
  local f
  for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
    pod/general/pod-create.yaml pod/general/pod-init-container-running.yaml \
    pod/general/pod-init-container-completed.yaml pod/general/pod-ready.yaml \
    pod/general/pod-complete.yaml pod/general/pod-delete.yaml; do
    # Drop the random 0-5 s jitter per stage (slow, unrepeatable runs), and pod-delete's wait
    # until the end of the grace period: no container runs, so, like a kubelet whose containers
    # have exited, the pod goes as soon as it is deleted.
    sed -e '/jitterDurationMilliseconds:/d' -e '/jitterDurationFrom:/{N;/deletionTimestamp/d}' \
      "$d/kustomize/stage/$f" > "$BIN/kwok-stages/$(basename "$f")"
  done
  stamp kwok "$stages_rev"
  timed kwok $(( $(date +%s) - s ))
}

build_crds() {
  fresh crds "$PROM_OPERATOR_VERSION" "$BIN/crds/monitoring.coreos.com_servicemonitors.yaml" && return 0
  local s d; s=$(date +%s)
  log "fetching prometheus-operator $PROM_OPERATOR_VERSION CRDs"
  d=$(cd "$WORK" && go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  local src=$d/example/prometheus-operator-crd
  [ -d "$src" ] || die "no $src in the prometheus-operator module"
  rm -rf "$BIN/crds"; mkdir -p "$BIN/crds"
  local k
  for k in servicemonitors podmonitors prometheusrules; do
    install -m 0644 "$src/monitoring.coreos.com_$k.yaml" "$BIN/crds/"
  done
  stamp crds "$PROM_OPERATOR_VERSION"
  timed crds $(( $(date +%s) - s ))
}

# Lays a provider binary out as a filesystem mirror that terraform and tofu `init` accept
# offline (tofu resolves hashicorp/* to its own registry host), and writes terraform.tfrc.
mirror_provider() { # type version binary
  local host d
  for host in registry.terraform.io registry.opentofu.org; do
    d=$BIN/terraform-mirror/$host/hashicorp/$1/${2#v}/linux_amd64
    rm -rf "$d"
    mkdir -p "$d"
    install -m 0755 "$3" "$d/terraform-provider-$1_$2"
  done
  cat >"$BIN/terraform.tfrc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$BIN/terraform-mirror"
    include = ["registry.terraform.io/hashicorp/*", "registry.opentofu.org/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*", "registry.opentofu.org/*/*"]
  }
}
disable_checkpoint = true
EOF
}

build_tf_helm_provider() {
  local v=$TF_HELM_VERSION
  fresh tf-helm-provider "$v" "$BIN/terraform-mirror/registry.terraform.io/hashicorp/helm/${v#v}" && return 0
  local w=$WORK/tf-helm-$v s; s=$(date +%s)
  mkdir -p "$w/stub/vbomutil"
  # Only v1.3.2 is served (v2/v3 lack a /vN module path: 403 "not available"). Its go.mod needs
  # vbom.ml/util (not served, no package used: an empty stub) and helm 3.3.4's replaces.
  printf 'module vbom.ml/util\n\ngo 1.12\n' > "$w/stub/vbomutil/go.mod"
  cat > "$w/go.mod" <<EOF
module ikegate.test/tf-helm

go 1.26

require github.com/hashicorp/terraform-provider-helm $v

replace github.com/Azure/go-autorest => github.com/Azure/go-autorest v13.3.3+incompatible
replace github.com/docker/distribution => github.com/docker/distribution v0.0.0-20191216044856-a8371794149d
replace vbom.ml/util => ./stub/vbomutil
EOF
  printf '//go:build tools\npackage tools\nimport _ "github.com/hashicorp/terraform-provider-helm"\n' > "$w/tools.go"
  log "building terraform-provider-helm $v"
  (cd "$w" && logged tf-helm-provider tidy &&
    logged tf-helm-provider gobuild -ldflags "-s -w" -o "$w/terraform-provider-helm" github.com/hashicorp/terraform-provider-helm)
  mirror_provider helm "$v" "$w/terraform-provider-helm"
  stamp tf-helm-provider "$v"
  timed tf-helm-provider $(( $(date +%s) - s ))
}

build_tf_kubernetes_provider() {
  local v=$TF_KUBERNETES_VERSION
  fresh tf-kubernetes-provider "$v" "$BIN/terraform-mirror/registry.terraform.io/hashicorp/kubernetes/${v#v}" && return 0
  local w=$WORK/tf-kubernetes-$v s modfile; s=$(date +%s)
  mkdir -p "$w/stub/vbomutil"
  # v1.13.4 is the newest the proxy serves (v2.x lacks a /v2 module path). Its module-path
  # replaces are copied (the ./vendor ones point at nothing in the zip); vbom.ml/util as above.
  printf 'module vbom.ml/util\n\ngo 1.12\n' >"$w/stub/vbomutil/go.mod"
  modfile=$(cd "$w" && go mod download -json "github.com/hashicorp/terraform-provider-kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    printf 'module ikegate.test/tf-kubernetes\n\ngo 1.26\n\nrequire github.com/hashicorp/terraform-provider-kubernetes %s\n\n' "$v"
    awk '/^replace \(/ {blk=1; next} blk && /^\)/ {blk=0; next} blk && /=>/ {print "replace " $0; next} /^replace .*=>/ {print}' "$modfile" \
      | grep -vE '=>[[:space:]]*\.\.?/' || true
    printf 'replace vbom.ml/util => ./stub/vbomutil\n'
  } >"$w/go.mod"
  printf '//go:build tools\npackage tools\nimport _ "github.com/hashicorp/terraform-provider-kubernetes"\n' >"$w/tools.go"
  log "building terraform-provider-kubernetes $v"
  (cd "$w" && logged tf-kubernetes-provider tidy &&
    logged tf-kubernetes-provider gobuild -ldflags "-s -w" -o "$w/terraform-provider-kubernetes" github.com/hashicorp/terraform-provider-kubernetes)
  mirror_provider kubernetes "$v" "$w/terraform-provider-kubernetes"
  stamp tf-kubernetes-provider "$v"
  timed tf-kubernetes-provider $(( $(date +%s) - s ))
}

build_tofu() {
  fresh tofu "$TOFU_VERSION" "$BIN/tofu" && return 0
  local w=$WORK/tofu-$TOFU_VERSION s modfile; s=$(date +%s)
  mkdir -p "$w"
  log "building OpenTofu $TOFU_VERSION"
  # Its go.mod has replaces, so `go install` refuses it: a throwaway module copies the
  # module-path replaces (the ./ ones point at nested modules the package does not need).
  modfile=$(cd "$w" && go mod download -json "github.com/opentofu/opentofu@$TOFU_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    printf 'module ikegate.test/tofu\n\ngo 1.26\n\nrequire github.com/opentofu/opentofu %s\n\n' "$TOFU_VERSION"
    awk '/^replace \(/ {blk=1; next} blk && /^\)/ {blk=0; next} blk && /=>/ {print "replace " $0; next} /^replace .*=>/ {print}' "$modfile" \
      | grep -vE '=>[[:space:]]*\.\.?/' || true
  } > "$w/go.mod"
  printf '//go:build tools\npackage tools\nimport _ "github.com/opentofu/opentofu/cmd/tofu"\n' > "$w/tools.go"
  (cd "$w" && logged tofu tidy &&
    logged tofu gobuild -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" -o "$BIN/tofu.tmp" github.com/opentofu/opentofu/cmd/tofu)
  mv -f "$BIN/tofu.tmp" "$BIN/tofu"
  stamp tofu "$TOFU_VERSION"
  timed tofu $(( $(date +%s) - s ))
}

# Runs one component's build under its lock (the k8s binaries share one lock and one module).
with_lock() { # lockname fn args...
  local name=$1; shift
  (
    flock -w 3600 9 || die "timed out waiting for the $name lock"
    "$@"
  ) 9>"$LOCKS/$name.lock"
}

comps=("$@")
if [ ${#comps[@]} -eq 0 ]; then
  comps=("${ALL[@]}")
  command -v terraform >/dev/null 2>&1 || comps+=(tofu)
fi
k8s=()
t0=$(date +%s)
for c in "${comps[@]}"; do
  case $c in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl | kubelet | kube-proxy) k8s+=("$c") ;;
    etcd | helm | kwok | crds | tf-helm-provider | tf-kubernetes-provider | tofu) ;;
    *) die "unknown component '$c' (known: ${ALL[*]} tofu)" ;;
  esac
done
# The biggest build first: kube-apiserver's module graph is what the others reuse.
[ ${#k8s[@]} -eq 0 ] || with_lock k8s build_k8s "${k8s[@]}"
for c in "${comps[@]}"; do
  case $c in
    etcd) with_lock etcd build_etcd ;;
    helm) with_lock helm build_helm ;;
    kwok) with_lock kwok build_kwok ;;
    crds) with_lock crds build_crds ;;
    # both providers write the one mirror and terraform.tfrc: one lock
    tf-helm-provider) with_lock terraform-mirror build_tf_helm_provider ;;
    tf-kubernetes-provider) with_lock terraform-mirror build_tf_kubernetes_provider ;;
    tofu) with_lock tofu build_tofu ;;
  esac
done
log "ready in $(( $(date +%s) - t0 ))s: ${comps[*]}"
echo "$BIN"
