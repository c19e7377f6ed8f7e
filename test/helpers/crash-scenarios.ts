// The runs whose crash points the crash-* tests visit: add, remove and prune on the compat layout
// (the boot dir) and the bls layout (the ESP); add and remove with grub and efistub. Each starts
// from a template root that every visited point copies, with a small prebuilt initramfs.
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { top } from './cli.js';
import {
  cloneRoot,
  completedState,
  enumerateCrashPoints,
  killAndRecover,
  killPastCommit,
  runKinstall,
  smallCpio,
  type CrashScenario,
  type RunResult,
} from './crash-enumeration.js';
import { KILLED_STATUS, kinstallInNamespace, makeGrubRoot } from './grub-namespace.js';
import { testKernel } from './kernel.js';
import type { ScratchRoots, TestRoot } from './root.js';
import { snapshotTree, type TreeSnapshot } from './tree.js';

export const kernel = testKernel();
export const V = kernel.version;
const MACHINE_ID = '0123456789abcdef0123456789abcdef';
/** No run here makes more changes than this: the guard of each enumeration. */
export const GUARD = 40;

export interface BootLayout {
  name: 'compat' | 'bls';
  /** Makes a root as the layout expects it, before any kernel. */
  setup(r: TestRoot): void;
  state(r: TestRoot): Record<string, TreeSnapshot>;
}

export const compat: BootLayout = {
  name: 'compat',
  setup: () => undefined,
  state: (r) => ({ boot: snapshotTree(r.boot), modules: snapshotTree(r.at('/lib/modules')) }),
};

export const bls: BootLayout = {
  name: 'bls',
  setup: (r) => {
    mkdirSync(r.at('/efi/EFI/systemd'), { recursive: true });
    mkdirSync(r.at('/efi/loader/entries'), { recursive: true });
    writeFileSync(r.at('/efi/loader/loader.conf'), 'timeout 3\n');
    mkdirSync(r.at('/etc/kernel'), { recursive: true });
    writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda1 ro\n');
    writeFileSync(r.at('/etc/machine-id'), `${MACHINE_ID}\n`);
    writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\nPRETTY_NAME="Gentoo Linux"\n');
  },
  state: (r) => ({ boot: snapshotTree(r.boot), esp: snapshotTree(r.at('/efi')), modules: snapshotTree(r.at('/lib/modules')) }),
};

/** Installs VERSION with a prebuilt initramfs (initrd-TAG), as a finished run before the one under test. */
async function installed(r: TestRoot, layout: BootLayout, version: string, tag: string): Promise<void> {
  const result = await runKinstall(
    [
      'add',
      '--force',
      '--root',
      r.root,
      '--layout',
      layout.name,
      '--initrd',
      r.at(`/var/fake/initrd-${tag}`),
      version,
      kernel.image,
    ],
    {},
  );
  expect(result.exitCode, result.output).toBe(0);
}

/** A template root with the given kernels installed; each visited point runs on a copy of it. */
export async function template(layout: BootLayout, kernels: Array<[string, string]>, roots: ScratchRoots): Promise<TestRoot> {
  const r = roots();
  layout.setup(r);
  mkdirSync(r.at('/var/fake'), { recursive: true });
  for (const tag of ['a', 'b', 'c']) writeFileSync(r.at(`/var/fake/initrd-${tag}`), smallCpio(`initramfs ${tag}`));
  // A rebuild of the same version: other bytes, so staging replaces the neutral location's image too.
  copyFileSync(kernel.image, r.at('/var/fake/vmlinuz-rebuilt'));
  appendFileSync(r.at('/var/fake/vmlinuz-rebuilt'), 'rebuilt\n');
  for (const [version, tag] of kernels) await installed(r, layout, version, tag);
  return r;
}

export function scenario(
  layout: BootLayout,
  base: TestRoot,
  args: (r: TestRoot) => string[],
): CrashScenario<Record<string, TreeSnapshot>> {
  return { fresh: () => cloneRoot(base), args, run: (_r, a, point) => runKinstall(a, {}, point), state: layout.state };
}

export const V2 = `${V}-second`;
export const V3 = `${V}-third`;

/** compat: a rebuild of the installed version V (other bytes, another initramfs) over it. */
export const compatRebuildArgs = (r: TestRoot) => [
  'add',
  '--root',
  r.root,
  '--layout',
  'compat',
  '--initrd',
  r.at('/var/fake/initrd-b'),
  V,
  r.at('/var/fake/vmlinuz-rebuilt'),
];

/** The runs under test, per layout: what the root holds before, and the command. */
export const runs = (layout: BootLayout) => [
  {
    verb: 'add',
    what: layout.name === 'compat' ? 'a rebuild of an installed version (every target replaced, *.old kept)' : 'a second version',
    kernels: [[V, 'a']] as Array<[string, string]>,
    args: (r: TestRoot) =>
      layout.name === 'compat'
        ? compatRebuildArgs(r)
        : ['add', '--force', '--root', r.root, '--layout', 'bls', '--initrd', r.at('/var/fake/initrd-b'), V2, kernel.image],
  },
  {
    verb: 'remove',
    what: 'one of two versions',
    kernels: [
      [V, 'a'],
      [V2, 'b'],
    ] as Array<[string, string]>,
    args: (r: TestRoot) => ['remove', '--root', r.root, '--layout', layout.name, V2],
  },
  {
    verb: 'prune',
    what: 'two of three versions in one transaction',
    kernels: [
      [V, 'a'],
      [V2, 'b'],
      [V3, 'c'],
    ] as Array<[string, string]>,
    args: (r: TestRoot) => ['prune', '--root', r.root, '--layout', layout.name, '--keep', '1'],
  },
];

/**
 * How many op:N and backup:N points each run passes: one op per change; a backup point per file
 * changed (its prior state journaled, even when absent), none for a modules dir renamed as a whole.
 */
export const EXPECTED_POINTS: Record<BootLayout['name'], Record<string, { op: number; backup: number }>> = {
  // add: the staged image replaced, then vmlinuz, System.map, config and the initramfs each copied to
  // *.old and replaced (9). remove: vmlinuz and initramfs of a --force'd version (only its image is
  // staged) and its modules dir (3). prune: that, and the first version's four files and dir (8).
  compat: { add: { op: 9, backup: 9 }, remove: { op: 3, backup: 2 }, prune: { op: 8, backup: 6 } },
  // add: the staged image, then TOKEN/KVER/linux, TOKEN/KVER/initrd and the entry (4). remove: those
  // three and the modules dir (4). prune: the same for two versions (8).
  bls: { add: { op: 4, backup: 4 }, remove: { op: 4, backup: 3 }, prune: { op: 8, backup: 6 } },
};

/**
 * Kills RUN at every op:N until one completes, then at every backup:N through the same changes
 * (some keep no backup, so their runs complete), then once it was final (`committed`).
 */
export async function enumerateRun(layout: BootLayout, run: ReturnType<typeof runs>[number], roots: ScratchRoots): Promise<void> {
  const base = await template(layout, run.kernels, roots);
  const s = scenario(layout, base, run.args);
  const after = await completedState(s, roots);
  expect(after, 'the run changes something').not.toEqual(layout.state(base));
  const ops = await enumerateCrashPoints('op', GUARD, killAndRecover(s, after));
  const backups = await enumerateCrashPoints('backup', GUARD, killAndRecover(s, after), ops.killed.length);
  expect(ops.killed.length).toBeGreaterThan(0);
  expect(backups.killed.length).toBeGreaterThan(0);
  expect({ op: ops.killed.length, backup: backups.killed.length }).toEqual(EXPECTED_POINTS[layout.name][run.verb]);
  await killPastCommit(s, after);
}

/** grub: the boot dir (grub.cfg, grub.cfg~ and the compat files) and the neutral location. */
export const grubState = (r: TestRoot): { boot: TreeSnapshot; modules: TreeSnapshot } => ({
  boot: snapshotTree(r.boot),
  modules: snapshotTree(r.at('/lib/modules')),
});

/** kinstall in the mount namespace the real grub-mkconfig needs; a kill shows as status 137 there. */
export async function runGrub(r: TestRoot, args: string[], point?: string): Promise<RunResult> {
  const result = await kinstallInNamespace(r, args, point ? { KINSTALL_TEST_CRASH_AFTER: point } : {});
  return { killed: result.exitCode === KILLED_STATUS, exitCode: result.exitCode, output: `${result.stdout}\n${result.stderr}` };
}

export const grubAddArgs = (r: TestRoot, version: string, tag: string) => [
  'add',
  '--force',
  '--root',
  r.root,
  '--layout',
  'grub',
  '--initrd',
  r.at(`/var/fake/initrd-${tag}`),
  version,
  kernel.image,
];

/** A root grub-mkconfig can run in, with a grub.cfg and the given versions installed. */
export async function grubTemplate(versions: string[], roots: ScratchRoots): Promise<TestRoot> {
  const r = roots();
  makeGrubRoot(r);
  writeFileSync(r.at('/boot/grub/grub.cfg'), '# the grub.cfg from before\n');
  mkdirSync(r.at('/var/fake'), { recursive: true });
  for (const tag of ['a', 'b']) writeFileSync(r.at(`/var/fake/initrd-${tag}`), smallCpio(`initramfs ${tag}`));
  for (const version of versions) {
    const result = await runGrub(r, grubAddArgs(r, version, 'a'));
    expect(result.exitCode, result.output).toBe(0);
  }
  return r;
}

const windows = {
  label: 'Windows Boot Manager',
  loader: '\\EFI\\Microsoft\\Boot\\bootmgfw.efi',
  args: '',
  active: true,
  disk: '/dev/vda',
  part: 1,
};

/** The fake firmware's boot entries and BootOrder (test/fakes/efibootmgr keeps them in a file). */
export function firmware(r: TestRoot): { bootOrder: string[]; entries: Record<string, unknown> } {
  const saved = JSON.parse(readFileSync(r.at('/var/fake/efi.json'), 'utf8')) as {
    bootOrder: string[];
    entries: Record<string, unknown>;
  };
  return { bootOrder: saved.bootOrder, entries: saved.entries };
}

/** efistub: the boot dir with the ESP at /boot/efi, the neutral location and the firmware. */
export const efiState = (r: TestRoot) => ({
  boot: snapshotTree(r.boot),
  modules: snapshotTree(r.at('/lib/modules')),
  firmware: firmware(r),
});

/** kinstall with the fake efibootmgr's state file; `fail` (EFIBOOTMGR_FAKE_FAIL) applies to all but recover. */
export const runEfi = (fail?: string) => (r: TestRoot, args: string[], point?: string) =>
  runKinstall(
    args,
    {
      EFIBOOTMGR_FAKE_STATE: r.at('/var/fake/efi.json'),
      ...(fail && args[0] !== 'recover' ? { EFIBOOTMGR_FAKE_FAIL: fail } : {}),
    },
    point,
  );

export const efiAddArgs = (r: TestRoot) => [
  'add',
  '--root',
  r.root,
  '--layout',
  'efistub',
  '--initrd',
  r.at('/var/fake/initrd-a'),
  V,
  kernel.image,
];

/**
 * A root with an ESP, a Windows entry in the firmware and, when `installed`, the kernel installed;
 * `options` adds to the efistub section of the config file.
 */
export async function efiTemplate(
  installed: boolean,
  roots: ScratchRoots,
  options: Record<string, unknown> = {},
): Promise<TestRoot> {
  const efistub = { efibootmgr: path.join(top, 'test/fakes/efibootmgr'), efivars: true, disk: '/dev/vda', part: 1, ...options };
  const r = roots({ config: { efistub } });
  for (const dir of ['/boot/efi/EFI', '/etc/kernel', '/var/fake']) mkdirSync(r.at(dir), { recursive: true });
  writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda2 ro\n');
  writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\n');
  writeFileSync(
    r.at('/var/fake/efi.json'),
    JSON.stringify({ bootCurrent: '0000', timeout: 1, bootOrder: ['0000'], entries: { '0000': windows } }),
  );
  writeFileSync(r.at('/var/fake/initrd-a'), smallCpio('initramfs a'));
  if (installed) {
    const result = await runEfi()(r, efiAddArgs(r));
    expect(result.exitCode, result.output).toBe(0);
  }
  return r;
}
