#!/usr/bin/env bash
# Installs everything kinstall's demo and tests need on a Debian 12 machine, as root:
# Debian packages, npm dependencies, the build in dist/, the cached test kernel and the test
# kernel built from source (about 10 minutes on two cores, once: it is cached too).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
packages=(dracut-core kmod cpio binutils zstd xz-utils gzip qemu-system-x86 ovmf dosfstools mtools
  systemd-boot-efi grub-efi-amd64-bin grub2-common util-linux shellcheck fusefat fuse sbsigntool openssl
  systemd fdisk linux-source-6.1 make gcc flex bison libelf-dev bc)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
  apt-get update -q
fi
if [ ${#missing[@]} -gt 0 ]; then
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
scripts/fetch-test-kernel.sh >/dev/null
nice -n 19 scripts/build-test-kernel.sh >/dev/null
