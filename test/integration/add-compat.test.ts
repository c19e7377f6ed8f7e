// kinstall add with the compat layout and real dracut/depmod on the real Debian cloud kernel.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, symlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { installkernel, kinstall } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot, writeHook } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();
let root: TestRoot;

describe('kinstall add, compat layout, real dracut', () => {
  it('installs the exact files, a real initramfs for the version, and modules.dep', async () => {
    root = newRoot({ modules: true });
    writeHook(root, '/etc/kinstall/hooks.d', '60-noop', 'exit 0');
    const result = await kinstall(['add', '--root', root.root, '--layout', 'compat', '--initramfs', 'dracut', V, kernel.image]);
    expect(result.stderr).toContain(`installed ${V}`);
    expect(result.exitCode).toBe(0);
    expect(Object.keys(snapshotTree(root.boot)).sort()).toEqual([
      `System.map-${V}`,
      `config-${V}`,
      `initramfs-${V}.img`,
      `vmlinuz-${V}`,
    ]);
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(lstatSync(root.at(`/boot/vmlinuz-${V}`)).mode & 0o777).toBe(0o644);
    expect(existsSync(root.at(`/lib/modules/${V}/modules.dep`))).toBe(true);
    const listing = execFileSync('lsinitrd', [root.at(`/boot/initramfs-${V}.img`)], { encoding: 'utf8' });
    expect(listing).toContain(`usr/lib/modules/${V}/kernel/drivers/block/virtio_blk.ko`);
    // installkernel.log in Gentoo's columns: date, writer, version, conf root, layout, initrd and UKI generator, dir, kernel, initrd, plugins.
    const history = readFileSync(root.at('/var/log/installkernel.log'), 'utf8').split('\n').filter(Boolean);
    expect(history).toHaveLength(1);
    const columns = history[0]?.split('\t') ?? [];
    expect(columns.slice(1, 10)).toEqual([
      'kinstall',
      V,
      'notset',
      'compat',
      'dracut',
      'notset',
      '/boot',
      `vmlinuz-${V}`,
      `initramfs-${V}.img`,
    ]);
    // The plugins that ran, each phase's: the shipped 50-dkms did not (no dkms here).
    expect(columns[10]).toBe('/etc/kinstall/hooks.d/60-noop /etc/kinstall/hooks.d/60-noop');
    expect(columns).toHaveLength(12);
  });

  it('--dry-run prints the plan and changes nothing', async () => {
    root = newRoot({ modules: true });
    const before = snapshotTree(root.root);
    const result = await kinstall(['add', '--dry-run', '--root', root.root, '--layout', 'compat', V, kernel.image]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`place ${kernel.image} -> ${root.at(`/boot/vmlinuz-${V}`)}`);
    expect(result.stdout).toContain(`initramfs-${V}.img`);
    expect(snapshotTree(root.root)).toEqual(before);
  });

  it('reinstalling keeps the previous files as .old and moves existing version-less links', async () => {
    root = newRoot({ modules: true });
    symlinkSync('vmlinuz-5.10.0-old', root.at('/boot/vmlinuz'));
    const first = await kinstall(['add', '--root', root.root, '--layout', 'compat', '--initramfs', 'none', V, kernel.image]);
    expect(first.exitCode).toBe(0);
    expect(readlinkSync(root.at('/boot/vmlinuz'))).toBe(`vmlinuz-${V}`);
    expect(readlinkSync(root.at('/boot/vmlinuz.old'))).toBe('vmlinuz-5.10.0-old');
    const second = await kinstall(['add', '--root', root.root, '--layout', 'compat', '--initramfs', 'none', V]);
    expect(second.exitCode).toBe(0);
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}.old`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(existsSync(root.at(`/boot/System.map-${V}.old`))).toBe(true);
    expect(readlinkSync(root.at('/boot/vmlinuz.old'))).toBe('vmlinuz-5.10.0-old');
    expect(existsSync(root.at('/boot/initramfs.img'))).toBe(false);
  });
});

describe('installkernel as make install calls it', () => {
  it('takes relative paths from a build dir and stages into the neutral location', async () => {
    root = newRoot({ modules: true });
    const build = root.at('/usr/src/linux');
    execFileSync('mkdir', ['-p', `${build}/arch/x86/boot`]);
    execFileSync('cp', [kernel.image, `${build}/arch/x86/boot/bzImage`]);
    execFileSync('cp', [kernel.systemMap, `${build}/System.map`]);
    execFileSync('cp', [kernel.config, `${build}/.config`]);
    const buildBefore = snapshotTree(build);
    const result = await installkernel(
      [V, 'arch/x86/boot/bzImage', 'System.map', '/boot', '--root', root.root, '--initramfs', 'none'],
      { cwd: build },
    );
    expect(result.stderr).toContain(`installed ${V}`);
    expect(result.exitCode).toBe(0);
    for (const [name, source] of [
      ['vmlinuz', kernel.image],
      ['System.map', kernel.systemMap],
      ['config', kernel.config],
    ] as const) {
      expect(readFileSync(root.at(`/lib/modules/${V}/${name}`)).equals(readFileSync(source))).toBe(true);
    }
    expect(readFileSync(root.at(`/boot/config-${V}`)).equals(readFileSync(kernel.config))).toBe(true);
    expect(snapshotTree(build)).toEqual(buildBefore);
  });
});
