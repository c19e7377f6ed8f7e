// Try-once on the bls and uki layouts across real reboots: systemd-boot (EFI/BOOT/BOOTX64.EFI,
// timeout 0) in OVMF on a persistent GPT disk. A bad trial kernel panics once and the next boot
// falls back to the old kernel with nobody at the console; a good one boots, `kinstall confirm`
// runs on the state read back from the disk, and the reboot after it starts the new kernel by default.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildBootDisk, readBootDisk } from '../helpers/boot-disk.js';
import { bootSequence, describeSequence, freshVars, type Boot, type BootSequenceResult } from '../helpers/boot.js';
import { kinstall } from '../helpers/cli.js';
import { badTryInitramfs, goodTryInitramfs } from '../helpers/initramfs.js';
import { testKernel } from '../helpers/kernel.js';
import { makeRoot, useScratchRoots, type TestRoot } from '../helpers/root.js';
import { MACHINE_ID } from './roots.js';

const SYSTEMD_BOOT = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
const loader = { 'EFI/BOOT/BOOTX64.EFI': SYSTEMD_BOOT };
const kernel = testKernel();
/** The old kernel is the real version; the trial the same image installed as a newer one. */
const OLD = kernel.version;
const NEW = '6.1.99-trial';
/** Each kernel's command line tags it; panic=1 turns the bad trial's panic into a reboot. */
const cmdline = (tag: string) => `console=ttyS0 panic=1 kinstall.tag=${tag}`;

interface CountedLayout {
  name: 'bls' | 'uki';
  /** Where systemd-boot finds the layout's counted files, and their extension. */
  dir: string;
  ext: string;
}

const LAYOUTS: CountedLayout[] = [
  { name: 'bls', dir: '/efi/loader/entries', ext: '.conf' },
  { name: 'uki', dir: '/efi/EFI/Linux', ext: '.efi' },
];

/** A root with systemd-boot's ESP, OLD installed as the default and NEW as a trial with `trialInitrd`. */
async function trialRoot(layout: CountedLayout, trialInitrd: Buffer): Promise<TestRoot> {
  const r = makeRoot();
  mkdirSync(r.at('/efi/loader/entries'), { recursive: true });
  mkdirSync(r.at('/efi/EFI/Linux'), { recursive: true });
  writeFileSync(r.at('/efi/loader/loader.conf'), 'timeout 0\n');
  writeFileSync(r.at('/etc/machine-id'), `${MACHINE_ID}\n`);
  writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\nPRETTY_NAME="Gentoo Linux"\n');
  mkdirSync(r.at('/var/fake'), { recursive: true });
  writeFileSync(r.at('/var/fake/old.img'), goodTryInitramfs());
  writeFileSync(r.at('/var/fake/new.img'), trialInitrd);
  const add = async (version: string, tag: string, ...extra: string[]) => {
    const args = ['--layout', layout.name, '--force', '--initrd', r.at(`/var/fake/${tag.toLowerCase()}.img`)];
    const result = await kinstall(['add', '--root', r.root, ...args, '--cmdline', cmdline(tag), ...extra, version, kernel.image]);
    if (result.exitCode !== 0) throw new Error(`kinstall add ${version} exited ${result.exitCode}:\n${result.stderr}`);
  };
  await add(OLD, 'OLD');
  await add(NEW, 'NEW', '--try');
  return r;
}

/** The layout's counted files on the root's ESP, sorted. */
const countedFiles = (r: TestRoot, layout: CountedLayout) => readdirSync(r.at(layout.dir)).sort();
const fileOf = (layout: CountedLayout, version: string, counter = '') => `${MACHINE_ID}-${version}${counter}${layout.ext}`;

interface Status {
  version: string;
  default: boolean;
  trial: string | null;
}
async function status(r: TestRoot): Promise<Map<string, Status>> {
  const result = await kinstall(['status', '--json', '--root', r.root]);
  expect(result.exitCode, result.stderr).toBe(0);
  return new Map((JSON.parse(result.stdout) as Status[]).map((k) => [k.version, k]));
}

/** Every kernel's status, for assertion messages. */
const shown = (kernels: Map<string, Status>) => JSON.stringify([...kernels.values()]);

type Expected = { tag: string; outcome: 'panicked' | 'marker' };
const outcomeOf = (b: Boot) => (b.panicked ? 'panicked' : b.reachedMarker ? 'marker' : undefined);

/**
 * bootSequence's `until` for an expected run of boots: it ends once the last expected boot shows its
 * outcome, or as soon as a boot differs (another kernel, another outcome, one boot too many), so a
 * wrong fallback fails at once rather than at the timeout.
 */
function untilSequence(expected: Expected[]): (boots: Boot[]) => boolean {
  return (boots) => {
    const wrong = boots.some((b, i) => {
      const want = expected[i];
      const outcome = outcomeOf(b);
      return !want || b.tag !== want.tag || (outcome !== undefined && outcome !== want.outcome);
    });
    return wrong || (boots.length === expected.length && outcomeOf(boots[boots.length - 1]!) !== undefined);
  };
}

function expectSequence(run: BootSequenceResult, expected: Expected[]): void {
  const why = describeSequence(run);
  expect(run.ended, why).toBe('until');
  expect(
    run.boots.map((b) => ({ tag: b.tag, outcome: outcomeOf(b) })),
    why,
  ).toEqual(expected);
}

const report = (label: string, run: BootSequenceResult) =>
  process.stderr.write(`try-once ${label}: ${run.boots.length} boot(s) in ${run.seconds.toFixed(1)} s\n`);

describe.each(LAYOUTS)('try-once on $name through systemd-boot, across reboots', (layout) => {
  const roots = useScratchRoots({ after: 'all' });
  let badTrial: TestRoot;
  let goodTrial: TestRoot;
  beforeAll(async () => {
    badTrial = roots.adopt(await trialRoot(layout, badTryInitramfs()));
    goodTrial = roots.adopt(await trialRoot(layout, goodTryInitramfs()));
  }, 180_000);

  it('a bad trial panics once; the next boot runs the old kernel by itself; status says the trial failed', async () => {
    const r = badTrial;
    expect(countedFiles(r, layout)).toEqual([fileOf(layout, NEW, '+1'), fileOf(layout, OLD)].sort());
    const disk = buildBootDisk({ from: r.at('/efi'), out: r.at('/disk.img'), add: loader });
    const vars = freshVars(r.at('/vars.fd'));
    const expected: Expected[] = [
      { tag: 'NEW', outcome: 'panicked' },
      { tag: 'OLD', outcome: 'marker' },
    ];
    const run = await bootSequence({ disk, vars, log: r.at('/serial.log'), until: untilSequence(expected), timeoutSeconds: 300 });
    report(`${layout.name} bad trial`, run);
    expectSequence(run, expected);

    // systemd-boot spent the trial's one try on the disk: +1 became +0-1 when it started NEW.
    readBootDisk(disk, r.at('/efi'));
    expect(countedFiles(r, layout), describeSequence(run)).toEqual([fileOf(layout, NEW, '+0-1'), fileOf(layout, OLD)].sort());
    const kernels = await status(r);
    expect(kernels.get(NEW), shown(kernels)).toMatchObject({ trial: 'failed', default: false });
    expect(kernels.get(OLD), shown(kernels)).toMatchObject({ trial: null, default: true });
  }, 420_000);

  it('a good trial boots; confirm on the disk state read back makes it the default of the next boot', async () => {
    const r = goodTrial;
    const disk = buildBootDisk({ from: r.at('/efi'), out: r.at('/disk.img'), add: loader });
    const vars = freshVars(r.at('/vars.fd'));
    const trialBoot: Expected[] = [{ tag: 'NEW', outcome: 'marker' }];
    const tried = await bootSequence({
      disk,
      vars,
      log: r.at('/serial-trial.log'),
      until: untilSequence(trialBoot),
      timeoutSeconds: 200,
    });
    report(`${layout.name} good trial`, tried);
    expectSequence(tried, trialBoot);

    // The running system's `kinstall confirm`, on the ESP as the trial boot left it.
    readBootDisk(disk, r.at('/efi'));
    expect(countedFiles(r, layout), describeSequence(tried)).toEqual([fileOf(layout, NEW, '+0-1'), fileOf(layout, OLD)].sort());
    const confirmed = await kinstall(['confirm', '--root', r.root, NEW]);
    expect(confirmed.exitCode, confirmed.stderr).toBe(0);
    expect(confirmed.stdout).toBe(`confirmed ${NEW} (${layout.name})`);
    expect(countedFiles(r, layout)).toEqual([fileOf(layout, NEW), fileOf(layout, OLD)].sort());

    buildBootDisk({ from: r.at('/efi'), out: disk, add: loader });
    const asDefault: Expected[] = [{ tag: 'NEW', outcome: 'marker' }];
    const rebooted = await bootSequence({
      disk,
      vars,
      log: r.at('/serial-confirmed.log'),
      until: untilSequence(asDefault),
      timeoutSeconds: 200,
    });
    report(`${layout.name} after confirm`, rebooted);
    expectSequence(rebooted, asDefault);

    readBootDisk(disk, r.at('/efi'));
    expect(countedFiles(r, layout), describeSequence(rebooted)).toEqual([fileOf(layout, NEW), fileOf(layout, OLD)].sort());
    const kernels = await status(r);
    expect(kernels.get(NEW), shown(kernels)).toMatchObject({ trial: 'confirmed', default: true });
    expect(kernels.get(OLD), shown(kernels)).toMatchObject({ trial: null, default: false });
  }, 480_000);
});
