#!/usr/bin/env bash
# Prometheus and promtool from Debian's `prometheus` package, for the observability suites
# (test/observability: promtool check metrics/rules, promtool test rules, a real server scraping a
# running cluster). The package is downloaded and extracted into .prometheus/ (git-ignored), NOT
# installed: `apt-get install prometheus` would start a server on all interfaces and pull in the
# node exporter. Nothing here listens anywhere; the tests start the server on 127.0.0.1.
#
#   scripts/prometheus.sh install   download and extract (idempotent)
#   scripts/prometheus.sh bin       print the directory holding `prometheus` and `promtool`
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.prometheus"
bin="$dest/root/usr/bin"

case "${1:-}" in
  install)
    if [ -x "$bin/prometheus" ] && [ -x "$bin/promtool" ]; then
      echo "prometheus already in $dest: $("$bin/prometheus" --version 2>&1 | head -1)"
      exit 0
    fi
    mkdir -p "$dest/debs" "$dest/root"
    (cd "$dest/debs" && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get download prometheus; }; })
    dpkg-deb -x "$dest"/debs/prometheus_*.deb "$dest/root"
    "$bin/prometheus" --version 2>&1 | head -1
    ;;
  bin)
    echo "$bin"
    ;;
  *)
    echo "usage: scripts/prometheus.sh install | bin" >&2
    exit 2
    ;;
esac
