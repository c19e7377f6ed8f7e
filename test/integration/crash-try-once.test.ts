// Crash points of `add --try` and `kinstall confirm` on the bls layout: SIGKILL at every op:N,
// recovery after each kill, and the ESP, the modules and the trial record as before the run (or as
// after a successful one). A failed or killed trial install or confirm leaves the old default.
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  cloneRoot,
  completedState,
  enumerateCrashPoints,
  killAndRecover,
  killPastCommit,
  runKinstall,
  type CrashScenario,
} from '../helpers/crash-enumeration.js';
import { bls, GUARD, kernel, template, V, V2 } from '../helpers/crash-scenarios.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const roots = useScratchRoots({ after: 'all' });
const TOKEN = '0123456789abcdef0123456789abcdef';

/** The trial record without its times, which differ from run to run. */
function trialRecord(r: TestRoot): unknown {
  const file = r.at('/var/lib/kinstall/trial.json');
  if (!existsSync(file)) return null;
  const { installed, confirmed, ...rest } = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  return { ...rest, installed: typeof installed, confirmed: typeof confirmed };
}

const state = (r: TestRoot) => ({ esp: snapshotTree(r.at('/efi')), ...bls.state(r), trial: trialRecord(r) });
type State = ReturnType<typeof state>;

const tryArgs = (r: TestRoot) => [
  'add',
  '--force',
  '--try',
  '--root',
  r.root,
  '--layout',
  'bls',
  '--initrd',
  r.at('/var/fake/initrd-b'),
  V2,
  kernel.image,
];

function scenarioOn(base: TestRoot, args: (r: TestRoot) => string[]): CrashScenario<State> {
  return { fresh: () => cloneRoot(base), args, run: (_r, a, point) => runKinstall(a, {}, point), state };
}

async function enumerate(s: CrashScenario<State>, base: TestRoot): Promise<string[]> {
  const after = await completedState(s, roots);
  expect(after, 'the run changes something').not.toEqual(state(base));
  const ops = await enumerateCrashPoints('op', GUARD, killAndRecover(s, after));
  await killPastCommit(s, after);
  return ops.killed;
}

describe('SIGKILL at every op:N of a trial install and of confirm (bls), then recovery', () => {
  it('add --try: the image, the counted entry and the record each roll back', async () => {
    const base = await template(bls, [[V, 'a']], roots);
    const s = scenarioOn(base, tryArgs);
    const after = await completedState(s, roots);
    expect(after.trial).toEqual({ version: V2, layout: 'bls', previous: V, installed: 'string', confirmed: 'undefined' });
    expect(Object.keys(after.esp)).toContain(`loader/entries/${TOKEN}-${V2}+1.conf`);
    // The staged image, linux, initrd, the entry, and the record.
    expect(await enumerate(s, base)).toHaveLength(5);
  });

  it('confirm: the renamed entry and the confirmed record roll back to the spent trial', async () => {
    const base = await template(bls, [[V, 'a']], roots);
    const installed = await runKinstall(tryArgs(base), {});
    expect(installed.exitCode, installed.output).toBe(0);
    // systemd-boot started the trial: one try spent.
    renameSync(base.at(`/efi/loader/entries/${TOKEN}-${V2}+1.conf`), base.at(`/efi/loader/entries/${TOKEN}-${V2}+0-1.conf`));
    const s = scenarioOn(base, (r) => ['confirm', '--root', r.root, V2]);
    const after = await completedState(s, roots);
    expect(Object.keys(after.esp)).toContain(`loader/entries/${TOKEN}-${V2}.conf`);
    expect(after.trial).toMatchObject({ confirmed: 'string' });
    // The entry under its new name, the old name removed, the record.
    expect(await enumerate(s, base)).toHaveLength(3);
  });
});
