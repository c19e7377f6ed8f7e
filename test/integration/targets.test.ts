// Where removals and ESP installs land: compat's version-less links after a remove (grub plans the
// same), and an ESP listed in fstab that is mounted (the control for the hostile "not mounted").
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { grubLayout } from '../../plugins/layout-grub/index.js';
import { kinstall } from '../helpers/cli.js';
import { testContext } from '../helpers/context.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';
import { initramfsFixture } from '../helpers/initramfs.js';

const kernel = testKernel();
const V = kernel.version;
const OLDER = '6.0.1';
const OLDEST = '5.10.0';
let root: TestRoot;
let mounted: string | undefined;
const newRoot = useScratchRoots({
  first: () => {
    if (mounted) execFileSync('umount', [mounted]);
    mounted = undefined;
  },
});

/** Two older kernels in the boot dir, 6.0.1 with an initramfs, and the links on 6.0.1 / 5.10.0. */
function bootWithOlderKernels(links = true): TestRoot {
  const r = newRoot({ modules: true });
  for (const version of [OLDER, OLDEST]) {
    for (const name of [`vmlinuz-${version}`, `System.map-${version}`, `config-${version}`])
      writeFileSync(r.at(`/boot/${name}`), `${name}\n`);
  }
  writeFileSync(r.at(`/boot/initramfs-${OLDER}.img`), 'initramfs\n');
  if (links) {
    symlinkSync(`vmlinuz-${OLDER}`, r.at('/boot/vmlinuz'));
    symlinkSync(`vmlinuz-${OLDEST}`, r.at('/boot/vmlinuz.old'));
    symlinkSync(`initramfs-${OLDER}.img`, r.at('/boot/initramfs.img'));
  }
  writeFileSync(r.at('/initrd.img'), initramfsFixture('the new initramfs\n'));
  return r;
}

const add = (r: TestRoot) =>
  kinstall(['add', '--root', r.root, '--layout', 'compat', '--initrd', r.at('/initrd.img'), V, kernel.image]);
const remove = (r: TestRoot, version: string) => kinstall(['remove', '--root', r.root, '--layout', 'compat', version]);
const link = (r: TestRoot, name: string) =>
  lstatSync(r.at(`/boot/${name}`), { throwIfNoEntry: false })?.isSymbolicLink() ? readlinkSync(r.at(`/boot/${name}`)) : undefined;

async function listed(r: TestRoot): Promise<Array<{ version: string; isDefault?: boolean }>> {
  const result = await kinstall(['list', '--json', '--root', r.root, '--layout', 'compat']);
  expect(result.exitCode, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Array<{ version: string; isDefault?: boolean }>;
}

describe('compat remove and the version-less links', () => {
  it("removing the kernel vmlinuz names moves vmlinuz to vmlinuz.old's kernel and .old to the next: the tree is as before the add", async () => {
    root = bootWithOlderKernels();
    const before = snapshotTree(root.boot);
    const added = await add(root);
    expect(added.exitCode, added.stderr).toBe(0);
    expect([link(root, 'vmlinuz'), link(root, 'vmlinuz.old')]).toEqual([`vmlinuz-${V}`, `vmlinuz-${OLDER}`]);
    expect([link(root, 'initramfs.img'), link(root, 'initramfs.img.old')]).toEqual([
      `initramfs-${V}.img`,
      `initramfs-${OLDER}.img`,
    ]);

    const removed = await remove(root, V);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect([link(root, 'vmlinuz'), link(root, 'vmlinuz.old')]).toEqual([`vmlinuz-${OLDER}`, `vmlinuz-${OLDEST}`]);
    // No other initramfs remains for initramfs.img.old: it goes rather than dangle.
    expect([link(root, 'initramfs.img'), link(root, 'initramfs.img.old')]).toEqual([`initramfs-${OLDER}.img`, undefined]);
    expect(snapshotTree(root.boot)).toEqual(before);
    expect((await listed(root)).find((k) => k.isDefault)?.version).toBe(OLDER);
  });

  it('removing a version the links do not name leaves them untouched', async () => {
    root = bootWithOlderKernels();
    expect((await add(root)).exitCode).toBe(0);
    const installed = snapshotTree(root.boot);
    const removed = await remove(root, OLDEST);
    expect(removed.exitCode, removed.stderr).toBe(0);
    const expected = Object.fromEntries(Object.entries(installed).filter(([name]) => !name.endsWith(`-${OLDEST}`)));
    expect(snapshotTree(root.boot)).toEqual(expected);
    expect([link(root, 'vmlinuz'), link(root, 'vmlinuz.old')]).toEqual([`vmlinuz-${V}`, `vmlinuz-${OLDER}`]);
  });

  it('links that do not exist are not created by a remove, and the last kernel takes its links with it', async () => {
    root = bootWithOlderKernels(false);
    expect((await add(root)).exitCode).toBe(0);
    expect((await remove(root, V)).exitCode).toBe(0);
    expect(readdirSync(root.boot).filter((n) => !/-\d/.test(n))).toEqual([]);

    symlinkSync(`vmlinuz-${OLDER}`, root.at('/boot/vmlinuz'));
    expect((await remove(root, OLDEST)).exitCode).toBe(0);
    const removed = await remove(root, OLDER);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(readdirSync(root.boot)).toEqual([]);
  });

  it('a vmlinuz that is a regular file is left alone', async () => {
    root = bootWithOlderKernels(false);
    expect((await add(root)).exitCode).toBe(0);
    writeFileSync(root.at('/boot/vmlinuz'), readFileSync(kernel.image));
    expect((await remove(root, V)).exitCode).toBe(0);
    expect(lstatSync(root.at('/boot/vmlinuz')).isFile()).toBe(true);
    expect(readFileSync(root.at('/boot/vmlinuz')).equals(readFileSync(kernel.image))).toBe(true);
  });

  it("grub plans the same link moves as compat (it shares compat's removal plan)", async () => {
    root = bootWithOlderKernels();
    expect((await add(root)).exitCode).toBe(0);
    const plan = await grubLayout.planRemove(await testContext(root.root), V);
    expect(plan.link).toEqual([
      { path: root.at('/boot/vmlinuz'), target: `vmlinuz-${OLDER}` },
      { path: root.at('/boot/vmlinuz.old'), target: `vmlinuz-${OLDEST}` },
      { path: root.at('/boot/initramfs.img'), target: `initramfs-${OLDER}.img` },
    ]);
    expect(plan.remove).toContain(root.at('/boot/initramfs.img.old'));
  });
});

describe('an ESP listed in /etc/fstab', () => {
  it('is accepted when it is mounted: bls installs onto the mounted filesystem', async () => {
    root = newRoot({ modules: true });
    mkdirSync(root.at('/efi'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', root.at('/efi')]);
    mounted = root.at('/efi');
    mkdirSync(root.at('/efi/loader/entries'), { recursive: true });
    mkdirSync(root.at('/etc/kernel'), { recursive: true });
    writeFileSync(root.at('/etc/kernel/cmdline'), 'root=/dev/vda1 ro\n');
    writeFileSync(root.at('/etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    writeFileSync(root.at('/etc/fstab'), 'UUID=ABCD-EF01 /efi vfat umask=0077 0 2\n');
    const result = await kinstall(['add', '--root', root.root, '--layout', 'bls', '--initramfs', 'none', V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    const linux = root.at(`/efi/0123456789abcdef0123456789abcdef/${V}/linux`);
    expect(readFileSync(linux).equals(readFileSync(kernel.image))).toBe(true);
  });

  it('is accepted when it is mounted: efistub installs onto the mounted filesystem', async () => {
    root = newRoot({ modules: true });
    mkdirSync(root.at('/boot/efi'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', root.at('/boot/efi')]);
    mounted = root.at('/boot/efi');
    mkdirSync(root.at('/boot/efi/EFI'));
    mkdirSync(root.at('/etc/kernel'), { recursive: true });
    writeFileSync(root.at('/etc/kernel/cmdline'), 'root=/dev/vda1 ro\n');
    writeFileSync(root.at('/etc/fstab'), 'UUID=ABCD-EF01 /boot/efi vfat umask=0077 0 2\n');
    const result = await kinstall(['add', '--root', root.root, '--layout', 'efistub', '--initramfs', 'none', V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readFileSync(root.at(`/boot/efi/EFI/Gentoo/vmlinuz-${V}.efi`)).equals(readFileSync(kernel.image))).toBe(true);
  });
});
