#!/usr/bin/env bash
# The Grafana dashboard schema checker (test/observability/grafana-validate, Go, built on
# github.com/grafana/grafana-foundation-sdk/go v0.0.22 from the Go module proxy, pinned in go.sum).
# Built into .grafana-validate/bin (git-ignored); rebuilt only when its sources change, so a warm
# machine skips the build. test/observability/grafana-schema.test.ts runs the binary.
#
#   scripts/grafana-validate.sh build          build if missing or stale (needs Go >= 1.21)
#   scripts/grafana-validate.sh run [file...]  build, then check the files (default: every
#                                              dashboard in helm/ikegate/dashboards/)
#   scripts/grafana-validate.sh bin            print the binary's path
set -euo pipefail
export LC_ALL=C # the source fingerprint hashes *.go in byte order, as the test does
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/test/observability/grafana-validate"
dest="$root/.grafana-validate"
bin="$dest/bin/grafana-validate"

# The Go toolchain from the machine image lives in /usr/local/go; a non-login shell may not have it.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; fi

build() {
  local stamp
  stamp="$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -d' ' -f1)"
  if [ -x "$bin" ] && [ "$(cat "$dest/stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  if ! command -v go >/dev/null 2>&1; then
    echo "grafana-validate: Go not found (need Go >= 1.21 to build the dashboard schema checker;" \
      "Debian 12's golang-go is 1.19, too old: install Go from the machine image or go.dev)" >&2
    return 1
  fi
  if ! go version | grep -Eq 'go1\.(2[1-9]|[3-9][0-9])'; then
    echo "grafana-validate: $(go version) is too old, need Go >= 1.21" >&2
    return 1
  fi
  mkdir -p "$dest/bin"
  # -mod=readonly: go.sum pins the SDK; a module not in go.sum is an error, never a silent update.
  (cd "$src" && GOFLAGS=-mod=readonly GOTOOLCHAIN=local nice -n 10 go build -trimpath -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
  echo "$stamp" >"$dest/stamp"
  echo "built $bin ($(go version | cut -d' ' -f3))"
}

case "${1:-}" in
  build)
    build
    ;;
  run)
    build >&2
    shift
    if [ $# -eq 0 ]; then set -- "$root"/helm/ikegate/dashboards/*.json; fi
    exec "$bin" "$@"
    ;;
  bin)
    echo "$bin"
    ;;
  *)
    echo "usage: scripts/grafana-validate.sh build | run [dashboard.json ...] | bin" >&2
    exit 2
    ;;
esac
