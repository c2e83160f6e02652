#!/usr/bin/env bash
# Builds the ikegate container image (Containerfile at the repository root) with podman, without
# pulling anything from a container registry:
#   rootfs   Debian 12 packages from the machine's own apt sources (`apt-get download` +
#            `dpkg-deb --fsys-tarfile | tar -x`, never installed, no maintainer scripts run) into a
#            merged-/usr tree: libc and friends, python3.11 (libs/tun opens /dev/net/tun through it),
#            iproute2 (`ip`, worker addresses and routes), nftables (`nft`, the worker masquerade),
#            openssl (`ikegate up`'s self-signed TLS certificate), `env` (the bin's shebang).
#            iputils-ping (the chart's `helm test` pings through the tunnel; no file capability:
#            it uses ICMP datagram sockets, net.ipv4.ping_group_range).
#            Plus this machine's node binary (Node >= 20.19; Debian 12 ships 18, so the machine
#            image provides it) and a passwd/group with the non-root user 10001.
#   deps     production node_modules: `npm ci --omit=dev --ignore-scripts` (npm registry only).
#   context  the repository itself, filtered by .containerignore (sources, no tests).
# The Containerfile stitches the three together with `--build-context` (FROM scratch, COPY --from).
#
# Usage: scripts/image.sh build [--tag T]     (default tag localhost/ikegate:dev); prints the tag last
#        scripts/image.sh rootfs              (assemble the rootfs only; prints its directory)
# Env:   IKEGATE_IMAGE_CACHE  cache dir (default ~/.cache/ikegate-image): .debs, rootfs and deps
#        are rebuilt only when the package list, the node binary or package-lock.json change.
# Needs: podman + runc (.ci/run installs them), apt-get, dpkg-deb, npm.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CACHE=${IKEGATE_IMAGE_CACHE:-$HOME/.cache/ikegate-image}
mkdir -p "$CACHE/debs"

# Debian packages whose files go into the image. Their Depends are followed (apt-cache depends);
# EXCLUDE drops the packaging machinery that only maintainer scripts use (no dpkg/debconf at run time).
# libjemalloc2: the allocator every role preloads (Containerfile LD_PRELOAD; issue #14, docs/performance.md).
PACKAGES=(libc6 libstdc++6 libgcc-s1 python3.11-minimal iproute2 nftables openssl iputils-ping libjemalloc2)
EXCLUDE='^(debconf|cdebconf|dpkg|install-info|tar|libdebian-installer4|libnewt0.52|libslang2|libtextwrap1|readline-common|libreadline8|gcc-12-base|libcap2-bin|debconf-2.0|perl-base|coreutils|sensible-utils|base-files)$'
# Single files taken from packages that are otherwise left out.
EXTRA_FILES=('coreutils:./usr/bin/env' 'libpython3.11-stdlib:./usr/lib/python3.11/json')
NODE_BIN=$(readlink -f "$(command -v node)")

log() { echo "[image] $*" >&2; }

closure() {
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "${PACKAGES[@]}" 2>/dev/null |
    grep -v '^ ' | grep -v '^<' | sort -u | grep -Ev "$EXCLUDE"
}

download() { # download the given packages into $CACHE/debs (apt-get update once if apt has no lists)
  (cd "$CACHE/debs" && apt-get download "$@" >/dev/null 2>&1) || {
    log "apt-get download failed; running apt-get update"
    apt-get update -q >/dev/null
    (cd "$CACHE/debs" && apt-get download "$@" >/dev/null)
  }
}

deb_of() { # newest downloaded .deb of a package
  ls -1 "$CACHE/debs/$1"_*.deb 2>/dev/null | sort -V | tail -1
}

rootfs() {
  local pkgs key dir tmp p deb
  mapfile -t pkgs < <(closure)
  [ "${#pkgs[@]}" -gt 5 ] || { log "apt-cache depends gave no package list (apt-get update?)"; exit 1; }
  local versions
  versions=$(apt-cache policy "${pkgs[@]}" libpython3.11-stdlib coreutils 2>/dev/null | grep -E '^[^ ]|Candidate')
  key=$(printf '%s\n%s\n%s\n%s\n' "$versions" "$EXCLUDE" "${EXTRA_FILES[*]}" "$(sha256sum "$NODE_BIN")$(declare -f rootfs)" |
    sha256sum | cut -c1-16)
  dir=$CACHE/rootfs-$key
  if [ -f "$dir/.complete" ]; then echo "$dir"; return; fi
  log "assembling rootfs ($((${#pkgs[@]})) packages + node $("$NODE_BIN" --version)) in $dir"
  download "${pkgs[@]}" libpython3.11-stdlib coreutils
  tmp=$dir.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp"/usr/{bin,sbin,lib,lib64,local/bin} "$tmp"/{etc,tmp,run,opt,var/tmp,home/ikegate}
  # merged /usr, as a Debian 12 system has it; tar keeps these symlinks (--keep-directory-symlink)
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$tmp/$d"; done
  for p in "${pkgs[@]}"; do
    deb=$(deb_of "$p")
    [ -n "$deb" ] || { log "no .deb for $p"; exit 1; }
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$tmp"
  done
  for f in "${EXTRA_FILES[@]}"; do
    deb=$(deb_of "${f%%:*}")
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$tmp" --wildcards "${f#*:}" "${f#*:}/*" 2>/dev/null ||
      dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$tmp" "${f#*:}"
  done
  # what maintainer scripts or other packages would have made
  ln -sf python3.11 "$tmp/usr/bin/python3"
  # One path for LD_PRELOAD whatever the architecture's multiarch directory (Containerfile).
  local jemalloc
  jemalloc=$(cd "$tmp" && compgen -G 'usr/lib/*-linux-gnu/libjemalloc.so.2' | head -1 || true)
  [ -n "$jemalloc" ] || { log "libjemalloc.so.2 missing from the rootfs"; exit 1; }
  mkdir -p "$tmp/usr/local/lib"
  ln -sf "/$jemalloc" "$tmp/usr/local/lib/libjemalloc.so.2"
  install -m 0755 "$NODE_BIN" "$tmp/usr/local/bin/node"
  ln -s /opt/ikegate/services/cli/bin/ikegate.mjs "$tmp/usr/local/bin/ikegate"
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nikegate:x:10001:10001:ikegate:/home/ikegate:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$tmp/etc/passwd"
  printf 'root:x:0:\nikegate:x:10001:\nnogroup:x:65534:\n' >"$tmp/etc/group"
  printf 'hosts: files dns\n' >"$tmp/etc/nsswitch.conf"
  chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
  chown 10001:10001 "$tmp/home/ikegate"
  # documentation, manuals and locales are not needed at run time
  rm -rf "$tmp"/usr/share/{doc,man,info,lintian,locale,bug,bash-completion,zsh} "$tmp"/etc/init.d \
    "$tmp"/usr/lib/python3.11/{ensurepip,idlelib,lib2to3,pydoc_data,test,unittest,tkinter}
  find "$tmp/usr/lib/python3.11" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
  # every dynamic library the binaries need must resolve inside the rootfs
  local bin missing=0
  for bin in usr/local/bin/node usr/bin/python3.11 usr/sbin/nft bin/ip usr/bin/openssl usr/bin/env usr/local/lib/libjemalloc.so.2; do
    [ -e "$tmp/$bin" ] || { log "missing $bin"; missing=1; continue; }
    if chroot "$tmp" /usr/lib64/ld-linux-x86-64.so.2 --list "/$bin" 2>&1 | grep -q 'not found'; then
      chroot "$tmp" /usr/lib64/ld-linux-x86-64.so.2 --list "/$bin" | grep 'not found' >&2
      missing=1
    fi
  done
  [ "$missing" = 0 ] || { log "rootfs incomplete"; exit 1; }
  printf '%s\n' "${pkgs[@]}" >"$tmp/.packages"
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  prune rootfs "$dir"
  echo "$dir"
}

prune() { # kind keep: remove the cache's other (older) builds of that kind
  local d
  for d in "$CACHE/$1"-*; do [ "$d" = "$2" ] || rm -rf "$d"; done
}

deps() { # production node_modules for this package-lock.json
  local key dir tmp f
  key=$( (
    cat package-lock.json
    for f in package.json libs/*/package.json services/*/package.json; do echo "$f"; cat "$f"; done
    "$NODE_BIN" --version
  ) | sha256sum | cut -c1-16)
  dir=$CACHE/deps-$key
  if [ -f "$dir/.complete" ]; then echo "$dir"; return; fi
  log "npm ci --omit=dev in $dir"
  tmp=$dir.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp"
  cp package.json package-lock.json "$tmp/"
  for f in libs/*/package.json services/*/package.json; do
    mkdir -p "$tmp/$(dirname "$f")"
    cp "$f" "$tmp/$f"
  done
  (cd "$tmp" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  # the workspace links (node_modules/@ikegate/* -> ../../libs/*) resolve inside the image
  rm -rf "$tmp"/libs "$tmp"/services "$tmp"/package.json "$tmp"/package-lock.json
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  prune deps "$dir"
  echo "$dir"
}

build() {
  local tag=localhost/ikegate:dev
  while [ $# -gt 0 ]; do
    case $1 in
      --tag) tag=$2; shift 2 ;;
      *) echo "usage: $0 build [--tag T]" >&2; exit 2 ;;
    esac
  done
  command -v podman >/dev/null || { log "podman is not installed (apt-get install podman runc)"; exit 1; }
  local r d version revision t0
  t0=$(date +%s)
  r=$(rootfs)
  d=$(deps)
  version=$(node -p 'require("./package.json").version')
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  log "podman build -t $tag"
  # --network=none: nothing is fetched during the build (and podman's default bridge is not wanted)
  podman build --network=none --pull=never -q -f Containerfile \
    --build-context "rootfs=$r" --build-context "deps=$d" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    --build-arg "NODE_VERSION=$("$NODE_BIN" --version)" \
    --build-arg "CREATED=$(git log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ)" \
    -t "$tag" "$REPO" >/dev/null
  log "built $tag in $(($(date +%s) - t0)) s, $(podman image inspect --format '{{.Size}}' "$tag") bytes"
  echo "$tag"
}

case ${1:-} in
  build) shift; build "$@" ;;
  rootfs) rootfs ;;
  deps) deps ;;
  *) echo "usage: $0 build [--tag T] | rootfs | deps" >&2; exit 2 ;;
esac
