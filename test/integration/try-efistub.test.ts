// Try-once installs with the efistub layout: `kinstall add --try` arms UEFI BootNext for the new
// kernel and leaves the old default first in BootOrder; `kinstall confirm` makes it the default.
// The firmware is test/fakes/efibootmgr's JSON state under a temporary root, never real EFI variables.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { efistubLayout } from '../../plugins/layout-efistub/index.js';
import { kinstall } from '../helpers/cli.js';
import { testContext } from '../helpers/context.js';
import { testKernel } from '../helpers/kernel.js';
import { efibootmgrCalls, efistubRoot, FAKE_EFIBOOTMGR, fakeEfiEnv, fakeFirmware } from '../helpers/efistub-root.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const OLD = kernel.version;
const NEW = `${kernel.version}-trial`;
const loader = (v: string) => `\\EFI\\Gentoo\\vmlinuz-${v}.efi`;

const newRoot = useScratchRoots();

/** An ESP at /boot/efi, a command line, os-release NAME=Gentoo, a firmware holding Windows. */
const efiRoot = (options?: Record<string, unknown>): TestRoot =>
  efistubRoot(newRoot, { options, cmdline: 'root=/dev/vda2 ro\n' });

const fakeEnv = fakeEfiEnv;
const firmware = fakeFirmware;
const calls = efibootmgrCalls;
const cli = (r: TestRoot, args: string[], extra: Record<string, string> = {}) =>
  kinstall([...args, '--root', r.root], { env: fakeEnv(r, extra) });
const add = (r: TestRoot, version: string, extra: string[] = [], env: Record<string, string> = {}) =>
  cli(
    r,
    [
      'add',
      '--layout',
      'efistub',
      '--initramfs',
      'none',
      ...extra,
      ...(version === OLD ? [] : ['--force']),
      version,
      kernel.image,
    ],
    env,
  );
/** What the firmware does when it boots BootNext's entry: it deletes BootNext first. */
const bootOnce = (r: TestRoot) => {
  const state = firmware(r);
  delete state.bootNext;
  writeFileSync(r.at('/var/fake/efi.json'), JSON.stringify(state));
};
const status = async (r: TestRoot) => {
  const result = await cli(r, ['status']);
  expect(result.exitCode, result.stderr).toBe(0);
  return result.stdout.trim().split('\n').sort();
};
const trialState = async (r: TestRoot, version: string) =>
  efistubLayout.trial?.state(await testContext(r.root, {}, fakeEnv(r)), version);

/** The old kernel installed the ordinary way (Boot0001, first), then the new one with --try. */
async function oldThenTrial(r: TestRoot): Promise<void> {
  const old = await add(r, OLD);
  expect(old.exitCode, old.stderr).toBe(0);
  const trial = await add(r, NEW, ['--try']);
  expect(trial.exitCode, trial.stderr).toBe(0);
}

describe('efistub add --try: BootNext boots the new kernel once', () => {
  it('keeps the old entry first in BootOrder, appends the new one and sets BootNext to it', async () => {
    const root = efiRoot();
    await oldThenTrial(root);
    const state = firmware(root);
    expect(state.bootOrder).toEqual(['0001', '0000', '0002']);
    expect(state.bootNext).toBe('0002');
    expect(state.entries['0001']).toMatchObject({ label: `Gentoo ${OLD}`, loader: loader(OLD) });
    expect(state.entries['0002']).toMatchObject({
      label: `Gentoo ${NEW} (trial)`,
      loader: loader(NEW),
      args: 'root=/dev/vda2 ro',
    });
    // efibootmgr --create put the entry first; the layout puts BootOrder back, then arms BootNext.
    expect(calls(root).slice(-4)).toEqual([
      [
        '--create',
        '--disk',
        '/dev/vda',
        '--part',
        '1',
        '--label',
        `Gentoo ${NEW} (trial)`,
        '--loader',
        loader(NEW),
        '--unicode',
        'root=/dev/vda2 ro',
      ],
      ['-v'],
      ['--bootorder', '0001,0000,0002'],
      ['--bootnext', '0002'],
    ]);
    expect(existsSync(root.at(`/boot/efi/EFI/Gentoo/vmlinuz-${NEW}.efi`))).toBe(true);
    const shown = await execa(FAKE_EFIBOOTMGR, ['-v'], { env: fakeEnv(root) });
    expect(shown.stdout.split('\n')[0]).toBe('BootNext: 0002');
    expect(await trialState(root, NEW)).toBe('armed');
    expect(await trialState(root, OLD)).toBe('default');
    expect(await status(root)).toEqual([`${OLD}\tefistub\tdefault`, `${NEW}\tefistub\ttrial pending`]);
  });

  it('after the firmware used BootNext the trial is spent; under --root that reads as failed, the old kernel still default', async () => {
    const root = efiRoot();
    await oldThenTrial(root);
    bootOnce(root);
    expect(await trialState(root, NEW)).toBe('spent');
    expect(await trialState(root, OLD)).toBe('default');
    expect(await status(root)).toEqual([`${OLD}\tefistub\tdefault`, `${NEW}\tefistub\ttrial failed (fell back)`]);
  });

  it('removing the trial kernel before its boot deletes its entry and the BootNext naming it; rollback restores both', async () => {
    const root = efiRoot();
    await oldThenTrial(root);
    const armed = firmware(root);
    const failed = await cli(root, ['remove', NEW], { EFIBOOTMGR_FAKE_FAIL: '--delete-bootnext' });
    expect(failed.exitCode, failed.stderr).toBe(5);
    expect(firmware(root)).toEqual(armed);
    const removed = await cli(root, ['remove', NEW]);
    expect(removed.exitCode, removed.stderr).toBe(0);
    const state = firmware(root);
    expect(state.bootNext).toBeUndefined();
    expect(state.bootOrder).toEqual(['0001', '0000']);
    expect(Object.values(state.entries).map((e) => e.loader)).not.toContain(loader(NEW));
  });

  it('an ordinary kernel that is not first in BootOrder has no trial state', async () => {
    const root = efiRoot();
    expect((await add(root, OLD)).exitCode).toBe(0);
    expect((await add(root, NEW)).exitCode).toBe(0);
    expect(firmware(root).bootOrder).toEqual(['0002', '0001', '0000']);
    expect(await trialState(root, OLD)).toBeUndefined();
    expect(await trialState(root, `${OLD}-absent`)).toBeUndefined();
    const before = firmware(root);
    const result = await cli(root, ['confirm', OLD]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe(`${OLD}: not on trial; nothing to confirm`);
    expect(firmware(root)).toEqual(before);
  });

  it('efibootmgr failing at --bootnext rolls back to the exact previous firmware: entries, order, BootNext', async () => {
    const root = efiRoot();
    expect((await add(root, OLD)).exitCode).toBe(0);
    // A BootNext someone set before (Windows once): it must survive the failed run.
    writeFileSync(root.at('/var/fake/efi.json'), JSON.stringify({ ...firmware(root), bootNext: '0000' }));
    const before = firmware(root);
    const tree = snapshotTree(root.boot);
    const result = await add(root, NEW, ['--try'], { EFIBOOTMGR_FAKE_FAIL: '--bootnext' });
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(/^kinstall: ETOOL: efibootmgr failed \(exit code 1\); rolled back/m);
    expect(firmware(root)).toEqual(before);
    expect(snapshotTree(root.boot)).toEqual(tree);
    expect(existsSync(root.at('/var/lib/kinstall/trial.json'))).toBe(false);
    expect(calls(root).filter((c) => c[0] === '--delete-bootnum')).toEqual([['--delete-bootnum', '--bootnum', '0002']]);
  });

  it('a run killed after arming BootNext is undone by recovery: BootNext deleted, entry gone, order as before', async () => {
    const root = efiRoot();
    expect((await add(root, OLD)).exitCode).toBe(0);
    const before = firmware(root);
    const killed = await add(root, NEW, ['--try'], { KINSTALL_TEST_CRASH_AFTER: 'activated' });
    expect(killed.signal).toBe('SIGKILL');
    expect(firmware(root).bootNext).toBe('0002');
    const recovered = await cli(root, ['recover']);
    expect(recovered.exitCode, recovered.stderr).toBe(0);
    expect(firmware(root)).toEqual(before);
    expect(calls(root)).toContainEqual(['--delete-bootnext']);
  });

  it('without EFI variables a trial is refused by its preflight with one line, and nothing changes', async () => {
    const root = efiRoot({ disk: '/dev/vda', part: 1 });
    const before = snapshotTree(root.root);
    const ctx = await testContext(root.root, {}, fakeEnv(root));
    const staged = {
      version: NEW,
      moduleDir: root.at(`/lib/modules/${NEW}`),
      image: kernel.image,
      imageInfo: { path: kernel.image, format: 'bzImage', arch: 'x86_64', efiStub: true, size: 0 },
      stagingArea: root.at('/var/fake'),
      trial: true,
    } as const;
    const problems = (await efistubLayout.trial?.preflight?.(ctx, staged)) ?? [];
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^EFI variables not available \(installing under --root .*\): no BootNext can be set, so no trial can be armed; install without --try/,
    );
    expect(problems[0]).not.toContain('\n');
    expect(await efistubLayout.trial?.state(ctx, NEW)).toBeUndefined();
    expect(snapshotTree(root.root)).toEqual(before);
    expect(calls(root)).toEqual([]);
  });
});

describe('efistub kinstall confirm: the trial entry goes first in BootOrder', () => {
  it('after the trial boot: an ordinary entry, first in BootOrder; BootNext was already gone and is left alone', async () => {
    const root = efiRoot();
    await oldThenTrial(root);
    bootOnce(root);
    const result = await cli(root, ['confirm', NEW]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe(`confirmed ${NEW} (efistub)`);
    const state = firmware(root);
    expect(state.bootOrder).toEqual(['0002', '0001', '0000']);
    expect(state.bootNext).toBeUndefined();
    expect(state.entries['0002']).toMatchObject({ label: `Gentoo ${NEW}`, loader: loader(NEW), args: 'root=/dev/vda2 ro' });
    expect(Object.keys(state.entries)).toEqual(['0000', '0001', '0002']);
    expect(calls(root).some((c) => c[0] === '--delete-bootnext')).toBe(false);
    expect(await trialState(root, NEW)).toBe('default');
    expect(await trialState(root, OLD)).toBeUndefined();
    expect(await status(root)).toEqual([`${OLD}\tefistub\tinstalled`, `${NEW}\tefistub\tconfirmed, default`]);
    // A second confirm finds nothing to do.
    const again = await cli(root, ['confirm', NEW]);
    expect(again.stdout).toBe(`${NEW}: not on trial; nothing to confirm`);
    expect(firmware(root)).toEqual(state);
  });

  it('before the reboot: BootNext still names the entry, so confirm deletes it', async () => {
    const root = efiRoot();
    await oldThenTrial(root);
    const result = await cli(root, ['confirm', NEW]);
    expect(result.exitCode, result.stderr).toBe(0);
    const state = firmware(root);
    expect(state.bootOrder).toEqual(['0002', '0001', '0000']);
    expect(state.bootNext).toBeUndefined();
    expect(calls(root)).toContainEqual(['--delete-bootnext']);
  });

  it('a confirm that fails puts the firmware back as it was: trial entry, BootOrder and BootNext', async () => {
    const root = efiRoot();
    await oldThenTrial(root);
    const before = firmware(root);
    const record = readFileSync(root.at('/var/lib/kinstall/trial.json'), 'utf8');
    const result = await cli(root, ['confirm', NEW], { EFIBOOTMGR_FAKE_FAIL: '--delete-bootnext' });
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(/^kinstall: ETOOL: efibootmgr failed \(exit code 1\);/m);
    // It got as far as replacing the trial entry and deleting BootNext: the rollback recreated the entry.
    expect(calls(root).filter((c) => c[0] === '--create')).toHaveLength(4);
    expect(firmware(root)).toEqual(before);
    expect(readFileSync(root.at('/var/lib/kinstall/trial.json'), 'utf8')).toBe(record);
    expect(await trialState(root, NEW)).toBe('armed');
  });

  it('a confirm killed after the firmware changed is undone by recovery: the old default is back', async () => {
    const root = efiRoot();
    await oldThenTrial(root);
    bootOnce(root);
    const before = firmware(root);
    const record = readFileSync(root.at('/var/lib/kinstall/trial.json'), 'utf8');
    // op:1 is the record's write, after the layout's confirm: the firmware is already confirmed then.
    const killed = await cli(root, ['confirm', NEW], { KINSTALL_TEST_CRASH_AFTER: 'op:1' });
    expect(killed.signal).toBe('SIGKILL');
    expect(firmware(root).bootOrder[0]).toBe('0002');
    const recovered = await cli(root, ['recover']);
    expect(recovered.exitCode, recovered.stderr).toBe(0);
    expect(firmware(root)).toEqual(before);
    expect(readFileSync(root.at('/var/lib/kinstall/trial.json'), 'utf8')).toBe(record);
    expect(await status(root)).toEqual([`${OLD}\tefistub\tdefault`, `${NEW}\tefistub\ttrial failed (fell back)`]);
  });

  it('without EFI variables confirm says why and changes nothing', async () => {
    const root = efiRoot();
    await oldThenTrial(root);
    bootOnce(root);
    const before = firmware(root);
    writeFileSync(
      root.at('/etc/kinstall/config.json'),
      JSON.stringify({ targetHooks: 'host', efistub: { efibootmgr: FAKE_EFIBOOTMGR, efivars: false } }),
    );
    const result = await cli(root, ['confirm', NEW]);
    expect(firmware(root)).toEqual(before);
    // The loader state cannot be read, but the record still says NEW was tried and not confirmed.
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(
      /^kinstall: ETOOL: efibootmgr failed \(EFI variables are not available \(efistub\.efivars is false\)/m,
    );
  });
});

describe('test/fakes/efibootmgr and BootNext, as efibootmgr does it', () => {
  const run = (r: TestRoot, args: string[]) => execa(FAKE_EFIBOOTMGR, args, { env: fakeEnv(r), reject: false });
  it.each([
    ['a BootNext naming no entry', ['--bootnext', '0007'], 12, 'efibootmgr: Boot entry 7 does not exist'],
    ['a BootNext that is not a number', ['-n', 'zz'], 35, 'efibootmgr: Invalid BootNext value: zz'],
    [
      'deleting a BootNext that is not set',
      ['--delete-bootnext'],
      10,
      'efibootmgr: Could not delete BootNext: No such file or directory',
    ],
  ])('refuses %s and changes nothing', async (_name, args, code, message) => {
    const root = efiRoot();
    const before = readFileSync(root.at('/var/fake/efi.json'), 'utf8');
    const result = await run(root, args);
    expect(result.exitCode).toBe(code);
    expect(result.stderr).toBe(message);
    expect(readFileSync(root.at('/var/fake/efi.json'), 'utf8')).toBe(before);
  });

  it('sets BootNext with -n, prints it before BootCurrent, deletes it with -N; BootOrder is untouched', async () => {
    const root = efiRoot();
    const set = await run(root, ['-n', '0']);
    expect(set.exitCode, set.stderr).toBe(0);
    expect(set.stdout.split('\n').slice(0, 4)).toEqual([
      'BootNext: 0000',
      'BootCurrent: 0000',
      'Timeout: 1 seconds',
      'BootOrder: 0000',
    ]);
    expect(firmware(root)).toMatchObject({ bootNext: '0000', bootOrder: ['0000'] });
    const cleared = await run(root, ['-N']);
    expect(cleared.exitCode, cleared.stderr).toBe(0);
    expect(cleared.stdout).not.toContain('BootNext');
    expect('bootNext' in firmware(root)).toBe(false);
  });
});
