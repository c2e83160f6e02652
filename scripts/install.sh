#!/usr/bin/env bash
# Installs what `ikegate` needs at run time on Debian/Ubuntu, then the npm dependencies.
# Idempotent: packages already present are skipped, so a warm machine does no apt work.
#   openssl   self-signed TLS certificate when listen.tls has none
#   iproute2  `ip` for the TUN address and routes
#   nftables  the masquerade for virtual-IP traffic
#   python3   opens /dev/net/tun for node (libs/tun: node has no ioctl)
#   libjemalloc2  optional: the allocator a process re-executed for its TUN device preloads
#                 (services/cli allocator.ts); without it, and not root, ikegate runs on glibc's
#   gcc, libc6-dev  optional: npm ci's postinstall builds the native UDP addon with them
#                 (scripts/build-native.mjs); without them ikegate reads UDP through node's dgram
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=()
command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
command -v nft >/dev/null 2>&1 || pkgs+=(nftables)
command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
if ! compgen -G '/usr/lib/*-linux-gnu/libjemalloc.so.2' >/dev/null && [ ! -e /usr/lib64/libjemalloc.so.2 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    pkgs+=(libjemalloc2)
  else
    echo "optional package libjemalloc2 is not installed (not root): ikegate runs on glibc's malloc" >&2
  fi
fi
if ! command -v cc >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    pkgs+=(gcc libc6-dev)
  else
    echo "optional: no C compiler (not root): ikegate reads UDP through node's dgram" >&2
  fi
fi
if [ "${#pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${pkgs[*]} (run as root, or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${pkgs[@]}"
fi

npm ci --no-audit --no-fund
