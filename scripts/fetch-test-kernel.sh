#!/usr/bin/env bash
# Fetches the real Debian cloud kernel the tests install, once, into a cache outside the repo:
# $KINSTALL_TEST_CACHE (default /var/cache/kinstall-test)/kernel/{boot,lib/modules}/...
# Prints the cache directory. Idempotent: a complete cache is reused.
set -euo pipefail
cache=${KINSTALL_TEST_CACHE:-/var/cache/kinstall-test}
dest=$cache/kernel
if [ -f "$dest/.complete" ]; then
  echo "$dest"
  exit 0
fi
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$pkg" ]; then
  echo "fetch-test-kernel: cannot resolve linux-image-cloud-amd64 (run apt-get update first)" >&2
  exit 1
fi
work=$(mktemp -d "$cache.XXXXXX" 2>/dev/null || { mkdir -p "$cache" && mktemp -d "$cache/.fetch.XXXXXX"; })
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache"
# apt drops privileges to _apt for downloads; give it a directory it may write.
chmod 0777 "$work"
(cd "$work" && apt-get download -q "$pkg" >&2)
dpkg -x "$work"/"$pkg"_*.deb "$work/x"
rm -rf "$dest"
mv "$work/x" "$dest"
echo "$pkg" > "$dest/.complete"
echo "$dest"
