#!/usr/bin/env bash
# The demo: installs the real Debian cloud kernel with kinstall into a scratch root (never the
# host's /boot), with a dracut initramfs and the GRUB-free compat layout, then shows the result.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
kernel_dir=$(scripts/fetch-test-kernel.sh)
version=$(ls "$kernel_dir/lib/modules")
root=$(mktemp -d /tmp/kinstall-demo.XXXXXX)
echo "== scratch root: $root"
mkdir -p "$root/boot" "$root/lib/modules" "$root/etc/kinstall" "$root/etc/dracut-empty.conf.d"
cp -al "$kernel_dir/lib/modules/$version" "$root/lib/modules/"
# dracut ignores the host's own dracut.conf and builds a small generic initramfs.
cat > "$root/etc/kinstall/config.json" <<JSON
{ "dracut": { "args": ["--conf", "/dev/null", "--confdir", "$root/etc/dracut-empty.conf.d", "-m", "base", "--add-drivers", "virtio_blk"] } }
JSON
kinstall() { node dist/src/cli/kinstall.js "$@"; }
echo "== kinstall add --root $root --layout compat --initramfs dracut $version <image>"
kinstall add --root "$root" --layout compat --initramfs dracut "$version" "$kernel_dir/boot/vmlinuz-$version"
echo "== the boot dir kinstall wrote"
ls -l "$root/boot"
echo "== kinstall inspect"
kinstall inspect "$root/boot/vmlinuz-$version"
echo "== kinstall list"
kinstall list --root "$root" --layout compat
echo "== history"
cat "$root/var/log/installkernel.log"
# Boots the installed kernel and initramfs in QEMU (TCG, no disk): passes once the initramfs's
# init (dracut) prints to the console, which it does before it looks for a root device.
echo "== kinstall verify --root $root $version"
kinstall verify --root "$root" "$version"
