// SIGKILL inside a rollback (rollback:N, N = 1, 2, … until a rollback completes) and inside recovery
// itself (recover:N, recover:reactivate), then recovery again: each must end in the tree (and the
// firmware) as it was before the failed or killed run, however often it was interrupted.
import { existsSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cloneRoot, enumerateCrashPoints, journalFile, type CrashScenario } from '../helpers/crash-enumeration.js';
import {
  GUARD,
  V,
  V2,
  compat,
  compatRebuildArgs,
  efiAddArgs,
  efiState,
  efiTemplate,
  grubAddArgs,
  grubState,
  grubTemplate,
  runEfi,
  runGrub,
  scenario,
  template,
} from '../helpers/crash-scenarios.js';
import { useScratchRoots, writeHook, type TestRoot } from '../helpers/root.js';

const roots = useScratchRoots({ after: 'all' });

/** `kinstall recover` on R: exit 0, the journal gone, and what it said. */
async function recover<State>(s: CrashScenario<State>, r: TestRoot): Promise<string> {
  const result = await s.run(r, ['recover', '--root', r.root]);
  expect(result.exitCode, result.output).toBe(0);
  expect(existsSync(journalFile(r))).toBe(false);
  return result.output;
}

/**
 * A run that fails by itself and rolls back, killed at rollback:N: `kinstall recover` finishes the
 * rollback. The run that is not killed exits with EXITCODE, rolled back. Either way: as before.
 */
const killRollback =
  <State>(s: CrashScenario<State>, exitCode: number) =>
  async (point: string): Promise<boolean> => {
    const r = s.fresh();
    try {
      const before = s.state(r);
      const result = await s.run(r, s.args(r), point);
      if (!result.killed) {
        expect(result.exitCode, result.output).toBe(exitCode);
        expect(result.output).toMatch(/rolled back \d+ change\(s\), nothing was changed/);
        expect(s.state(r), `${point}: the rollback that was not killed`).toEqual(before);
        return false;
      }
      expect(existsSync(journalFile(r)), `${point}: the killed rollback left its journal`).toBe(true);
      expect(await recover(s, r)).toContain('was found: rolled back');
      expect(s.state(r), `${point}: the rollback finished by kinstall recover`).toEqual(before);
      return true;
    } finally {
      r.cleanup();
    }
  };

describe('SIGKILL at every rollback:N of a failed run, then kinstall recover', () => {
  it('compat: a preinst hook fails after the new version was staged; the neutral location comes back', async () => {
    const base = await template(compat, [[V, 'a']], roots);
    writeHook(base, '/etc/kernel/preinst.d', '10-fail', 'echo "refusing on purpose" >&2\nexit 1');
    const s = scenario(compat, base, (r) => [
      'add',
      '--force',
      '--root',
      r.root,
      '--layout',
      'compat',
      '--initrd',
      r.at('/var/fake/initrd-b'),
      V2,
      r.at('/var/fake/vmlinuz-rebuilt'),
    ]);
    const result = await enumerateCrashPoints('rollback', GUARD, killRollback(s, 5));
    // The staged image and the directory made for it.
    expect(result.killed).toEqual(['rollback:1', 'rollback:2']);
  });

  it('grub: a broken grub.d script fails grub-mkconfig after every compat file was placed', async () => {
    const base = await grubTemplate([V], roots);
    writeFileSync(base.at('/etc/grub.d/10_linux'), '#!/bin/sh\necho "10_linux: broken on purpose" >&2\nexit 1\n');
    const s: CrashScenario<ReturnType<typeof grubState>> = {
      fresh: () => cloneRoot(base),
      args: (r) => grubAddArgs(r, V2, 'b'),
      run: runGrub,
      state: grubState,
    };
    const result = await enumerateCrashPoints('rollback', GUARD, killRollback(s, 5));
    // vmlinuz and initramfs (--force: no System.map or config), the staged image and its directory.
    expect(result.killed).toHaveLength(4);
  });

  it('efistub: setting BootOrder fails after the firmware entry was made; recovery deletes the entry', async () => {
    // Not first: efibootmgr --create puts the new entry first, so kinstall sets BootOrder itself.
    const base = await efiTemplate(false, roots, { bootOrderFirst: false });
    const s: CrashScenario<ReturnType<typeof efiState>> = {
      fresh: () => cloneRoot(base),
      args: efiAddArgs,
      run: runEfi('--bootorder'),
      state: efiState,
    };
    const failed = await s.run(base, efiAddArgs(base));
    expect(failed.exitCode, failed.output).toBe(5);
    expect(failed.output).toContain('created firmware entry Boot0001');
    expect(efiState(base).firmware.bootOrder).toEqual(['0000']);
    const result = await enumerateCrashPoints('rollback', GUARD, killRollback(s, 5));
    // The image and initramfs on the ESP and their directory; the staged image, System.map, config
    // and their directory.
    expect(result.killed).toHaveLength(7);
  });
});

/**
 * A run killed at KILLED_AT, then `kinstall recover` killed at POINT; then recovery again: an odd N
 * by `kinstall recover` (the tree as before), an even N by the next command, the same run, which
 * recovers first and completes (the tree as a successful run leaves it).
 */
const killRecovery =
  <State>(s: CrashScenario<State>, killedAt: string, after: State) =>
  async (point: string, n: number): Promise<boolean> => {
    const r = s.fresh();
    try {
      const before = s.state(r);
      expect((await s.run(r, s.args(r), killedAt)).killed, `killed at ${killedAt}`).toBe(true);
      const first = await s.run(r, ['recover', '--root', r.root], point);
      if (!first.killed) {
        expect(first.exitCode, first.output).toBe(0);
        expect(first.output).toContain('was found: rolled back');
        expect(s.state(r), `${point}: a recovery that was not killed`).toEqual(before);
        return false;
      }
      expect(existsSync(journalFile(r)), `${point}: the killed recovery kept the journal`).toBe(true);
      if (n % 2 === 1) {
        expect(await recover(s, r)).toContain('was found: rolled back');
        expect(s.state(r), `${point}: recovered again by kinstall recover`).toEqual(before);
      } else {
        const next = await s.run(r, s.args(r));
        expect(next.exitCode, next.output).toBe(0);
        expect(next.output).toContain('was found: rolled back');
        expect(s.state(r), `${point}: recovered again by the next run, which completed`).toEqual(after);
      }
      return true;
    } finally {
      r.cleanup();
    }
  };

describe('SIGKILL inside recovery (recover:N, recover:reactivate), then recovery again', () => {
  it('compat: a rebuild killed with all nine changes made; recovery killed at each restore', async () => {
    const base = await template(compat, [[V, 'a']], roots);
    const s = scenario(compat, base, compatRebuildArgs);
    const reference = roots.adopt(s.fresh());
    expect((await s.run(reference, s.args(reference))).exitCode).toBe(0);
    const after = s.state(reference);
    const result = await enumerateCrashPoints('recover', GUARD, killRecovery(s, 'step:postinst', after));
    expect(result.killed).toHaveLength(9);
    expect(await killRecovery(s, 'step:postinst', after)('recover:reactivate', 1)).toBe(true);
  });

  it('compat: recovery killed at its first restore again and again still ends with the tree as before', async () => {
    const base = await template(compat, [[V, 'a']], roots);
    const s = scenario(compat, base, compatRebuildArgs);
    const r = roots.adopt(s.fresh());
    const before = s.state(r);
    expect((await s.run(r, s.args(r), 'step:postinst')).killed).toBe(true);
    // Each recovery restores one more path before it dies, deciding from what is on disk.
    let kills = 0;
    while ((await s.run(r, ['recover', '--root', r.root], 'recover:1')).killed) {
      kills += 1;
      expect(kills, 'recovery makes progress').toBeLessThanOrEqual(GUARD);
    }
    expect(kills).toBe(9);
    expect(existsSync(journalFile(r))).toBe(false);
    expect(s.state(r)).toEqual(before);
  });

  it('efistub: an add killed once the firmware entry was made; recovery killed at each restore and before the firmware is put back', async () => {
    const base = await efiTemplate(false, roots);
    const s: CrashScenario<ReturnType<typeof efiState>> = {
      fresh: () => cloneRoot(base),
      args: efiAddArgs,
      run: runEfi(),
      state: efiState,
    };
    const reference = roots.adopt(s.fresh());
    expect((await s.run(reference, s.args(reference))).exitCode).toBe(0);
    const after = s.state(reference);
    const result = await enumerateCrashPoints('recover', GUARD, killRecovery(s, 'activated', after));
    // As for its rollback: two files on the ESP, three staged, and the two directories made for them.
    expect(result.killed).toHaveLength(7);
    for (const [i, point] of ['recover:reactivate', 'recover:reactivate'].entries()) {
      expect(await killRecovery(s, 'activated', after)(point, i + 1), point).toBe(true);
    }
  });
});
