#!/usr/bin/env bash
# Builds the small x86_64 kernel the tests install from source, out of tree (make O=), once:
# Debian's linux-source-6.1 tarball is unpacked read-only into the cache, `make ARCH=x86_64
# tinyconfig` plus test/fixtures/kernel-build.config configures it, and the O= tree is kept.
# The cache ($KINSTALL_TEST_CACHE, default /var/cache/kinstall-test) is keyed by the source
# package's version and the config fragment, so only a new machine or a new config pays.
# Prints the O= directory (its `source` link points at the read-only source tree).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${KINSTALL_TEST_CACHE:-/var/cache/kinstall-test}
fragment=$top/test/fixtures/kernel-build.config
tarball=/usr/src/linux-source-6.1.tar.xz
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$(printf '%s\n' "$srcver" | cat - "$fragment" | sha256sum | cut -c1-16)
src=$cache/linux-source-$srcver
out=$cache/kbuild-$key
if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$cache"
if [ ! -f "$src/.complete" ]; then
  rm -rf "$src" "$src.tmp"
  mkdir -p "$src.tmp"
  tar -xJf "$tarball" -C "$src.tmp" --strip-components=1
  touch "$src.tmp/.complete"
  chmod -R a-w "$src.tmp"
  mv "$src.tmp" "$src"
fi
rm -rf "$out"
mkdir -p "$out"
make -s -C "$src" O="$out" ARCH=x86_64 tinyconfig >&2
args=()
while IFS='=' read -r name value; do
  case "$name" in ''|'#'*) continue ;; esac
  case "$value" in
    y) args+=(--enable "$name") ;;
    m) args+=(--module "$name") ;;
    n) args+=(--disable "$name") ;;
    *) echo "build-test-kernel: bad line in $fragment: $name=$value" >&2; exit 1 ;;
  esac
done < "$fragment"
"$src/scripts/config" --file "$out/.config" "${args[@]}"
make -s -C "$src" O="$out" ARCH=x86_64 olddefconfig >&2
# Every option the fragment asks for must have survived olddefconfig (a dependency can drop one).
while IFS='=' read -r name value; do
  case "$name" in ''|'#'*) continue ;; esac
  if [ "$value" = n ]; then
    grep -q "^CONFIG_$name=" "$out/.config" && { echo "build-test-kernel: CONFIG_$name is still set" >&2; exit 1; }
  else
    grep -qx "CONFIG_$name=$value" "$out/.config" || { echo "build-test-kernel: CONFIG_$name=$value did not survive olddefconfig" >&2; exit 1; }
  fi
done < "$fragment"
make -s -C "$out" ARCH=x86_64 -j"$(nproc)" >&2
touch "$out/.complete"
echo "$out"
