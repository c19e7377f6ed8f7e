// list, remove and prune on a root holding five kernels, and keep=N after an install.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { selectForPruning } from '../../src/core/commands/prune.js';
import { kinstall } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const versions = ['5.15.9-gentoo', '5.15.10-gentoo', '6.1.2-gentoo', '6.1.10-gentoo', '6.6.1-gentoo'];
const newRoot = useScratchRoots();
let root: TestRoot;

/** Five kernels in compat: the real image installed under five release names (--force). */
async function rootWithFiveKernels(): Promise<TestRoot> {
  const r = newRoot();
  symlinkSync('vmlinuz-none', r.at('/boot/vmlinuz'));
  for (const v of versions) {
    mkdirSync(r.at(`/lib/modules/${v}/kernel`), { recursive: true });
    const result = await kinstall([
      'add',
      '--force',
      '--root',
      r.root,
      '--layout',
      'compat',
      '--initramfs',
      'none',
      v,
      kernel.image,
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
  }
  return r;
}

describe('managing installed kernels', () => {
  it('lists every kernel newest first with the default marked', async () => {
    root = await rootWithFiveKernels();
    const result = await kinstall(['list', '--json', '--root', root.root, '--layout', 'compat']);
    expect(result.exitCode).toBe(0);
    const listed = JSON.parse(result.stdout) as Array<{ version: string; isDefault: boolean; running: boolean; size: number }>;
    expect(listed.map((k) => k.version)).toEqual([...versions].reverse());
    expect(listed.filter((k) => k.isDefault).map((k) => k.version)).toEqual(['6.6.1-gentoo']);
    expect(listed.every((k) => !k.running && k.size >= statSync(kernel.image).size)).toBe(true);
  });

  it('remove takes the version out of the boot dir and the neutral location', async () => {
    root = await rootWithFiveKernels();
    const result = await kinstall(['remove', '--root', root.root, '--layout', 'compat', '6.1.2-gentoo']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readdirSync(root.boot).filter((n) => n.includes('6.1.2-gentoo'))).toEqual([]);
    expect(existsSync(root.at('/lib/modules/6.1.2-gentoo'))).toBe(false);
    expect(existsSync(root.at('/boot/vmlinuz-6.1.10-gentoo'))).toBe(true);
    expect(readFileSync(root.at('/var/lib/kinstall/history.jsonl'), 'utf8')).toMatch(
      /"action":"remove","version":"6\.1\.2-gentoo"/,
    );
  });

  it('remove --keep-modules keeps the neutral location; an unknown version is refused with nothing changed', async () => {
    root = await rootWithFiveKernels();
    expect(
      (await kinstall(['remove', '--keep-modules', '--root', root.root, '--layout', 'compat', '5.15.9-gentoo'])).exitCode,
    ).toBe(0);
    expect(existsSync(root.at('/lib/modules/5.15.9-gentoo/vmlinuz'))).toBe(true);
    const before = snapshotTree(root.root);
    const missing = await kinstall(['remove', '--root', root.root, '--layout', 'compat', '4.19.0-nothere']);
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr).toMatch(/^kinstall: ENOTINSTALLED: kernel 4\.19\.0-nothere is not installed/m);
    expect(snapshotTree(root.root)).toEqual(before);
  });

  it('prune --keep 2 removes the three oldest by version order; --dry-run changes nothing', async () => {
    root = await rootWithFiveKernels();
    const before = snapshotTree(root.root);
    const dry = await kinstall(['prune', '--keep', '2', '--dry-run', '--root', root.root, '--layout', 'compat']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('would remove 5.15.9-gentoo');
    expect(snapshotTree(root.root)).toEqual(before);
    const result = await kinstall(['prune', '--keep', '2', '--root', root.root, '--layout', 'compat']);
    expect(result.exitCode, result.stderr).toBe(0);
    const left = readdirSync(root.boot)
      .filter((n) => /^vmlinuz-/.test(n))
      .sort();
    expect(left).toEqual(['vmlinuz-6.1.10-gentoo', 'vmlinuz-6.6.1-gentoo']);
  });

  it('add --keep 3 prunes after the install and never removes the kernel just installed', async () => {
    root = await rootWithFiveKernels();
    mkdirSync(root.at('/lib/modules/5.4.0-old/kernel'), { recursive: true });
    const result = await kinstall([
      'add',
      '--force',
      '--keep',
      '3',
      '--root',
      root.root,
      '--layout',
      'compat',
      '--initramfs',
      'none',
      '5.4.0-old',
      kernel.image,
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    const left = readdirSync(root.boot)
      .filter((n) => /^vmlinuz-/.test(n))
      .sort();
    expect(left).toEqual(['vmlinuz-5.4.0-old', 'vmlinuz-6.1.10-gentoo', 'vmlinuz-6.6.1-gentoo']);
  });
});

describe('remove with layout=auto', () => {
  it('takes the version out of every layout that holds it, and the tree is as before the adds', async () => {
    root = newRoot();
    mkdirSync(root.at('/efi/loader/entries'), { recursive: true });
    mkdirSync(root.at('/etc/kernel'), { recursive: true });
    writeFileSync(root.at('/etc/kernel/cmdline'), 'root=/dev/vda1 ro\n');
    writeFileSync(root.at('/etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    const before = { boot: snapshotTree(root.boot), esp: snapshotTree(root.at('/efi')) };
    for (const layout of ['compat', 'bls']) {
      const added = await kinstall([
        'add',
        '--root',
        root.root,
        '--layout',
        layout,
        '--initramfs',
        'none',
        kernel.version,
        kernel.image,
      ]);
      expect(added.exitCode, added.stderr).toBe(0);
    }
    expect(existsSync(root.at(`/boot/vmlinuz-${kernel.version}`))).toBe(true);
    expect(readdirSync(root.at('/efi/loader/entries'))).toHaveLength(1);

    const result = await kinstall(['remove', '--root', root.root, kernel.version]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`${kernel.version} is installed in the bls layout`);
    expect(result.stderr).toContain(`${kernel.version} is installed in the compat layout`);
    expect(snapshotTree(root.boot)).toEqual(before.boot);
    expect(snapshotTree(root.at('/efi'))).toEqual(before.esp);
    expect(readFileSync(root.at('/var/lib/kinstall/history.jsonl'), 'utf8')).toMatch(/"action":"remove".*"layout":"bls\+compat"/);
  });
});

describe('selectForPruning', () => {
  it('never picks a protected version (the running kernel, the one just installed)', () => {
    expect(selectForPruning(['1', '2', '3', '4', '5'], 2, ['1'])).toEqual(['2', '3', '4']);
    expect(selectForPruning(['1', '2', '3'], 3, [])).toEqual([]);
    expect(selectForPruning(['1', '2', '3', '4'], 1, ['4', '1'])).toEqual(['2', '3']);
  });

  it('never picks the newest, even when the running kernel is the oldest and N is 1', () => {
    expect(selectForPruning(['1', '2', '3'], 1, ['1'])).toEqual(['2']);
    expect(selectForPruning(['1', '2', '3'], 0, [])).toEqual(['1', '2']);
  });
});
