// The pieces of try-once installs that decide without a boot: boot counters in BLS/UKI names, the
// trial state a loader's state and kinstall's record make together, and which install is a trial.
import { mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bootCounter, countedFileName, isVersionFile } from '../../plugins/shared/bls-naming.js';
import type { Context } from '../../src/core/context.js';
import { decideTrial, trialStateOf, type TrialRecord } from '../../src/core/pipeline/trial.js';
import type { InstalledKernel, Layout } from '../../src/core/types.js';
import { testContext } from '../helpers/context.js';
import { useScratchRoots } from '../helpers/root.js';

const newRoot = useScratchRoots();

const kernel = (version: string, isDefault = false): InstalledKernel => ({
  version,
  layout: 'bls',
  files: [],
  image: `/efi/x/${version}/linux`,
  initrds: [],
  size: 0,
  isDefault,
});
const record = (extra: Partial<TrialRecord> = {}): TrialRecord => ({
  version: '6.2',
  layout: 'bls',
  previous: '6.1',
  installed: '2026-12-01T00:00:00.000Z',
  ...extra,
});
/** A context on the real root would read host state: these run on a scratch root, host or not as said. */
const contextAs = (host: boolean, running = '6.2'): Context =>
  ({ isHostRoot: host, runningRelease: running }) as unknown as Context;

describe('boot counters in BLS entry and UKI names', () => {
  it('reads +LEFT and +LEFT-DONE, and nothing from an uncounted name', () => {
    expect(bootCounter('tok-6.2+1.conf', '.conf')).toEqual({ left: 1, done: 0 });
    expect(bootCounter('tok-6.2+0-1.conf', '.conf')).toEqual({ left: 0, done: 1 });
    expect(bootCounter('tok-6.2+2-3.efi', '.efi')).toEqual({ left: 2, done: 3 });
    expect(bootCounter('tok-6.2.conf', '.conf')).toBeUndefined();
    expect(bootCounter('tok-6.2+1.conf', '.efi')).toBeUndefined();
  });
  it("a trial's name is the version's, counted with one try", () => {
    expect(countedFileName('tok', '6.2', '.conf', 1)).toBe('tok-6.2+1.conf');
    expect(isVersionFile('tok-6.2+0-1.conf', 'tok', '6.2', '.conf')).toBe(true);
    expect(isVersionFile('tok-6.20+0-1.conf', 'tok', '6.2', '.conf')).toBe(false);
  });
});

describe('a kernel trial state: the loader state joined with the record', () => {
  it('armed is pending; spent is failed unless it runs now on the host, then booted', () => {
    expect(trialStateOf(contextAs(true), kernel('6.2'), 'armed', record())).toBe('pending');
    expect(trialStateOf(contextAs(true, '6.1'), kernel('6.2'), 'spent', record())).toBe('failed');
    expect(trialStateOf(contextAs(true, '6.2'), kernel('6.2'), 'spent', record())).toBe('booted');
    // Under another --root the running kernel is the host's: a spent trial counts as failed.
    expect(trialStateOf(contextAs(false, '6.2'), kernel('6.2'), 'spent', record())).toBe('failed');
  });
  it('confirmed from the record once the loader no longer counts it; nothing for a kernel never tried', () => {
    const confirmed = record({ confirmed: '2026-12-01T01:00:00.000Z' });
    expect(trialStateOf(contextAs(false), kernel('6.2', true), 'default', confirmed)).toBe('confirmed');
    expect(trialStateOf(contextAs(false), kernel('6.2', true), 'armed', confirmed)).toBe('pending');
    expect(trialStateOf(contextAs(false), kernel('6.1', true), 'default', record())).toBeUndefined();
    expect(trialStateOf(contextAs(false), kernel('6.2'), undefined, undefined)).toBeUndefined();
  });
  it('a loader that keeps no trace (undefined): the record alone, failed while the kernel is not the default', () => {
    expect(trialStateOf(contextAs(false), kernel('6.2'), undefined, record())).toBe('failed');
    expect(trialStateOf(contextAs(false), kernel('6.2', true), undefined, record())).toBeUndefined();
    expect(trialStateOf(contextAs(false), { ...kernel('6.2'), layout: 'grub' }, undefined, record())).toBeUndefined();
  });
});

describe('which install is a trial', () => {
  const trialLayout = {
    name: 'bls',
    trial: { state: async () => undefined, confirm: async () => undefined },
  } as unknown as Layout;
  const compat = { name: 'compat', noTrialReason: 'no boot loader to steer' } as unknown as Layout;

  it('--try: a trial with the default as the fallback; the first kernel is not one; compat refuses', async () => {
    const ctx = await testContext(newRoot().root, { tryOnce: true });
    expect(await decideTrial(ctx, trialLayout, '6.2', [kernel('6.1', true)])).toEqual({ trial: true, previous: '6.1' });
    expect(await decideTrial(ctx, trialLayout, '6.2', [])).toEqual({ trial: false });
    // A reinstall of the default is not a trial of it.
    expect(await decideTrial(ctx, trialLayout, '6.1', [kernel('6.1', true)])).toEqual({ trial: false });
    await expect(decideTrial(ctx, compat, '6.2', [kernel('6.1', true)])).rejects.toMatchObject({ code: 'ENOTRIAL' });
  });

  it('tryOnce unset: a trial only where a confirm unit is enabled, and never refused', async () => {
    const r = newRoot();
    const ctx = await testContext(r.root);
    expect(await decideTrial(ctx, trialLayout, '6.2', [kernel('6.1', true)])).toEqual({ trial: false });
    mkdirSync(r.at('/etc/runlevels/default'), { recursive: true });
    writeFileSync(r.at('/etc/runlevels/default/kinstall-confirm'), '');
    expect(await decideTrial(ctx, trialLayout, '6.2', [kernel('6.1', true)])).toEqual({ trial: true, previous: '6.1' });
    expect(await decideTrial(ctx, compat, '6.2', [kernel('6.1', true)])).toEqual({ trial: false });
    const off = await testContext(r.root, { tryOnce: false });
    expect(await decideTrial(off, trialLayout, '6.2', [kernel('6.1', true)])).toEqual({ trial: false });
  });
});
