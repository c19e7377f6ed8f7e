// Try-once across real reboots for the grub and efistub layouts: OLD installed, NEW installed with
// `kinstall add --try`, then OVMF boots a persistent disk and vars file in one QEMU (a panic with
// panic=1 reboots in place). grub: the real GRUB EFI image reads the grub.cfg the real grub-mkconfig
// wrote and the grubenv on the disk, and clears next_entry itself. efistub: no loader; the firmware
// starts the kernel from the Boot#### entries and BootNext the efibootmgr fake recorded, written
// into the vars file. After the boots the disk (and the vars) are read back into the root, and
// `kinstall status`/`confirm` run on them as they would on the rebooted machine.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildBootDisk, readBootDisk } from '../helpers/boot-disk.js';
import { bootSequence, describeSequence, freshVars, type Boot, type BootSequenceResult } from '../helpers/boot.js';
import { kinstall, top } from '../helpers/cli.js';
import { readVarsToFakeState, writeFakeStateToVars, type FakeState } from '../helpers/efi-vars.js';
import { grubEfiFiles, kinstallInNamespace, prepareGrubRoot } from '../helpers/grub-namespace.js';
import { badTryInitramfs, goodTryInitramfs } from '../helpers/initramfs.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { bootRoot, kernel, scratch, scratchDir } from './roots.js';

const OLD = kernel.version;
/** A higher version, so grub-mkconfig lists it first: the trial must not become the default by that. */
const NEW = '6.1.99-trial';
/** Every boot of a trial stops when its verdict is known; these leave room for a loaded machine. */
const ONE_BOOT_SECONDS = 240;
const TWO_BOOTS_SECONDS = 420;

/** What a boot ran: its kinstall.tag (efistub tags each entry with its version), else GRUB's BOOT_IMAGE. */
const ran = (boot: Boot) => boot.tag ?? /(?:^|\s)BOOT_IMAGE=\S*\/vmlinuz-(\S+)/.exec(boot.cmdline)?.[1];
const outcomes = (run: BootSequenceResult) =>
  run.boots.map((b) => ({ ran: ran(b), panicked: b.panicked, marker: b.reachedMarker }));

/**
 * `until` for a sequence expected to run these versions in this order, the last one coming up: it
 * ends at the last one's marker, or as soon as a boot ran something else, came up early, or the
 * last one panicked.
 */
const verdictKnown = (expected: string[]) => (boots: Boot[]) =>
  boots.length > expected.length ||
  boots.some((b, i) => ran(b) !== expected[i] || b.reachedMarker || (i === expected.length - 1 && b.panicked));

interface StatusEntry {
  version: string;
  default: boolean;
  trial: string | null;
}

/** `kinstall status --json` of the root, as { version: { trial, default } }. */
async function statusOf(root: TestRoot, env: Record<string, string>): Promise<Record<string, Omit<StatusEntry, 'version'>>> {
  const result = await kinstall(['status', '--json', '--root', root.root], { env });
  expect(result.exitCode, result.stderr).toBe(0);
  const kernels = JSON.parse(result.stdout) as StatusEntry[];
  return Object.fromEntries(kernels.map((k) => [k.version, { trial: k.trial, default: k.default }]));
}

/** One test machine: a root with OLD and the trial NEW installed, its boot disk and its firmware's variables. */
interface Machine {
  layout: string;
  root: TestRoot;
  /** kinstall's environment on this root. */
  env: Record<string, string>;
  disk: string;
  vars: string;
  /** Makes the disk (and the vars) what the root says: after an install or a confirm. */
  writeOut(): void;
  /** Makes the root what the disk (and the vars) say after the boots. */
  readBack(run: BootSequenceResult): void;
}

/** Writes the trial initramfs images into the root's scratch dir: OLD's good one, NEW's as told. */
function initramfsFiles(root: TestRoot, trial: 'good' | 'bad'): { old: string; trial: string } {
  scratchDir(root);
  const files = { old: scratch(root, 'initramfs-good.img'), trial: scratch(root, `initramfs-${trial}.img`) };
  writeFileSync(files.old, goodTryInitramfs());
  if (trial === 'bad') writeFileSync(files.trial, badTryInitramfs());
  return files;
}

const GRUB_DEFAULTS = [
  'GRUB_DEFAULT=saved',
  'GRUB_TIMEOUT=0',
  'GRUB_DISTRIBUTOR=Gentoo',
  'GRUB_TERMINAL=console',
  // Shared by both kernels: BOOT_IMAGE tells them apart; panic=1 makes the bad one reboot.
  'GRUB_CMDLINE_LINUX="console=ttyS0 panic=1"',
  'GRUB_CMDLINE_LINUX_DEFAULT=""',
  '',
].join('\n');
/** /boot as the disk's filesystem, as the grub-probe fake reports it to grub-mkconfig. */
const VOLUME_ID = '4B1E5EED';
const grubProbeDisk = { GRUB_PROBE_FAKE_FS: 'fat', GRUB_PROBE_FAKE_FS_UUID: '4b1e-5eed' };

async function grubMachine(roots: ReturnType<typeof useScratchRoots>, trial: 'good' | 'bad'): Promise<Machine> {
  const root = prepareGrubRoot(roots.adopt(bootRoot()), GRUB_DEFAULTS);
  const initrd = initramfsFiles(root, trial);
  const add = async (version: string, image: string, extra: string[]) => {
    const args = ['add', '--root', root.root, '--layout', 'grub', '--initrd', image, '--force', ...extra, version, kernel.image];
    const result = await kinstallInNamespace(root, args, grubProbeDisk);
    if (result.exitCode !== 0) throw new Error(`kinstall ${args.join(' ')} exited ${result.exitCode}:\n${result.stderr}`);
  };
  await add(OLD, initrd.old, []);
  await add(NEW, initrd.trial, ['--try']);
  const loader = grubEfiFiles(scratch(root, 'grubx64.efi'));
  const disk = scratch(root, 'disk.img');
  return {
    layout: 'grub',
    root,
    env: {},
    disk,
    vars: freshVars(scratch(root, 'vars.fd')),
    writeOut: () => buildBootDisk({ from: root.boot, out: disk, add: loader, volumeId: VOLUME_ID }),
    readBack: () => readBootDisk(disk, root.boot),
  };
}

const EFIBOOTMGR = path.join(top, 'test/fakes/efibootmgr');

async function efistubMachine(roots: ReturnType<typeof useScratchRoots>, trial: 'good' | 'bad'): Promise<Machine> {
  const root = roots.adopt(bootRoot({ efistub: { efibootmgr: EFIBOOTMGR, efivars: true, disk: '/dev/vda', part: 1 } }));
  mkdirSync(root.at('/boot/efi/EFI'), { recursive: true });
  const initrd = initramfsFiles(root, trial);
  const fakeState = scratch(root, 'efibootmgr.json');
  const env = { EFIBOOTMGR_FAKE_STATE: fakeState };
  const add = async (version: string, image: string, extra: string[]) => {
    // Each entry's command line names its version: the kernel's `Command line:` shows which entry ran.
    const cmdline = `console=ttyS0 panic=1 kinstall.tag=${version}`;
    const args = ['add', '--root', root.root, '--layout', 'efistub', '--initrd', image, '--cmdline', cmdline];
    const result = await kinstall([...args, '--force', ...extra, version, kernel.image], { env });
    if (result.exitCode !== 0) throw new Error(`kinstall ${args.join(' ')} exited ${result.exitCode}:\n${result.stderr}`);
  };
  await add(OLD, initrd.old, []);
  await add(NEW, initrd.trial, ['--try']);
  const disk = scratch(root, 'disk.img');
  const vars = freshVars(scratch(root, 'vars.fd'));
  const readState = () => JSON.parse(readFileSync(fakeState, 'utf8')) as FakeState;
  return {
    layout: 'efistub',
    root,
    env,
    disk,
    vars,
    writeOut: () => {
      buildBootDisk({ from: root.at('/boot/efi'), out: disk });
      writeFakeStateToVars(readState(), vars);
    },
    readBack: (run) => {
      readBootDisk(disk, root.at('/boot/efi'));
      // BootCurrent is not in the vars file: the last boot's option is what efibootmgr would show.
      const state = readVarsToFakeState(vars, { ...readState(), bootCurrent: run.boots.at(-1)?.bootOption });
      writeFileSync(fakeState, `${JSON.stringify(state, null, 2)}\n`);
    },
  };
}

/** The entry numbers the efistub machine's firmware holds for OLD and NEW (undefined on grub). */
function entryNumbers(machine: Machine): Record<string, string | undefined> {
  if (machine.layout !== 'efistub') return {};
  const state = JSON.parse(readFileSync(machine.env.EFIBOOTMGR_FAKE_STATE!, 'utf8')) as FakeState;
  const numberOf = (version: string) =>
    Object.entries(state.entries).find(([, e]) => e.loader.endsWith(`\\vmlinuz-${version}.efi`))?.[0];
  return { [OLD]: numberOf(OLD), [NEW]: numberOf(NEW), first: state.bootOrder[0], next: state.bootNext };
}

/** The root's one-shot boot is set: grubenv's next_entry, or BootNext in the efibootmgr fake's state. */
function oneShotSet(machine: Machine): boolean {
  if (machine.layout === 'efistub') return entryNumbers(machine).next !== undefined;
  return /^next_entry=\S/m.test(readFileSync(machine.root.at('/boot/grub/grubenv'), 'latin1'));
}

const log = (machine: Machine, name: string) => scratch(machine.root, `serial-${name}.log`);
const report = (machine: Machine, what: string, run: BootSequenceResult) =>
  process.stderr.write(`${machine.layout} ${what}: ${run.boots.length} boot(s) in ${run.seconds.toFixed(1)} s\n`);

/** (1) NEW is bad: its one boot panics, the firmware reboots, and the next boot is OLD by itself. */
async function badTrialFallsBack(machine: Machine): Promise<void> {
  const armed = entryNumbers(machine);
  expect(oneShotSet(machine)).toBe(true);
  machine.writeOut();
  const run = await bootSequence({
    disk: machine.disk,
    vars: machine.vars,
    log: log(machine, 'bad-trial'),
    until: verdictKnown([NEW, OLD]),
    timeoutSeconds: TWO_BOOTS_SECONDS,
  });
  report(machine, 'bad trial', run);
  const why = describeSequence(run);
  expect(run.ended, why).toBe('until');
  expect(outcomes(run), why).toEqual([
    { ran: NEW, panicked: true, marker: false },
    { ran: OLD, panicked: false, marker: true },
  ]);
  if (machine.layout === 'efistub') {
    // BootNext started the trial's entry; BootOrder's first, OLD's, the next boot.
    expect(armed.next, why).toBe(armed[NEW]);
    expect(
      run.boots.map((b) => b.bootOption),
      why,
    ).toEqual([armed[NEW], armed[OLD]]);
  }

  machine.readBack(run);
  // The loader (GRUB's save_env on FAT) or the firmware (OVMF deleting BootNext) spent the one boot itself.
  expect(oneShotSet(machine), why).toBe(false);
  expect(await statusOf(machine.root, machine.env), why).toEqual({
    [OLD]: { trial: null, default: true },
    [NEW]: { trial: 'failed', default: false },
  });
}

/** (2) NEW is good: it comes up, confirm runs on the disk's state, and the next boot runs NEW as the default. */
async function goodTrialConfirmed(machine: Machine): Promise<void> {
  machine.writeOut();
  const trialRun = await bootSequence({
    disk: machine.disk,
    vars: machine.vars,
    log: log(machine, 'good-trial'),
    until: verdictKnown([NEW]),
    timeoutSeconds: ONE_BOOT_SECONDS,
  });
  report(machine, 'good trial', trialRun);
  const why = describeSequence(trialRun);
  expect(trialRun.ended, why).toBe('until');
  expect(outcomes(trialRun), why).toEqual([{ ran: NEW, panicked: false, marker: true }]);

  machine.readBack(trialRun);
  const confirmed = await kinstall(['confirm', NEW, '--root', machine.root.root], { env: machine.env });
  expect(confirmed.exitCode, confirmed.stderr).toBe(0);
  expect(confirmed.stdout).toBe(`confirmed ${NEW} (${machine.layout})`);
  const numbers = entryNumbers(machine);
  machine.writeOut();

  const afterRun = await bootSequence({
    disk: machine.disk,
    vars: machine.vars,
    log: log(machine, 'confirmed'),
    until: verdictKnown([NEW]),
    timeoutSeconds: ONE_BOOT_SECONDS,
  });
  report(machine, 'after confirm', afterRun);
  const whyAfter = describeSequence(afterRun);
  expect(afterRun.ended, whyAfter).toBe('until');
  expect(outcomes(afterRun), whyAfter).toEqual([{ ran: NEW, panicked: false, marker: true }]);
  if (machine.layout === 'efistub') {
    // No BootNext any more: NEW's entry boots because it is first in BootOrder.
    expect(numbers.next, whyAfter).toBeUndefined();
    expect(numbers.first, whyAfter).toBe(numbers[NEW]);
    expect(afterRun.boots[0]!.bootOption, whyAfter).toBe(numbers[NEW]);
  }

  machine.readBack(afterRun);
  expect(await statusOf(machine.root, machine.env), whyAfter).toEqual({
    [OLD]: { trial: null, default: false },
    [NEW]: { trial: 'confirmed', default: true },
  });
}

describe.each([
  { name: 'grub', make: grubMachine },
  { name: 'efistub', make: efistubMachine },
])('$name: try once across reboots in QEMU', ({ make }) => {
  const roots = useScratchRoots({ after: 'all' });
  const machines: Partial<Record<'good' | 'bad', Machine>> = {};
  beforeAll(async () => {
    machines.bad = await make(roots, 'bad');
    machines.good = await make(roots, 'good');
  }, 300_000);

  it('a bad trial panics once; the next boot is OLD by itself; status says NEW failed, OLD default', async () => {
    await badTrialFallsBack(machines.bad!);
  }, 600_000);

  it('a good trial comes up; confirm on the disk state makes NEW the default of the next boot', async () => {
    await goodTrialConfirmed(machines.good!);
  }, 600_000);
});
