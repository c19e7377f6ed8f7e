// Crash points enumerated, not sampled: a run is killed at `KIND:1`, `KIND:2`, … (the test-only
// KINSTALL_TEST_CRASH_AFTER points) until one completes without being killed, and each kill is
// followed by recovery and a comparison of the tree with the state before or after the run.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { expect } from 'vitest';
import { kinstallBin } from './cli.js';
import { assertScratch, type ScratchRoots, type TestRoot } from './root.js';

/** One run of the built CLI: killed by its crash point, or finished with an exit code. */
export interface RunResult {
  killed: boolean;
  exitCode: number;
  output: string;
}

/** Runs `kinstall ARGS` with env, and the crash point when one is given. */
export async function runKinstall(args: string[], env: Record<string, string>, point?: string): Promise<RunResult> {
  const result = await execa('node', [kinstallBin, ...args], {
    reject: false,
    stdin: 'ignore',
    env: { ...env, ...(point ? { KINSTALL_TEST_CRASH_AFTER: point } : {}) },
  });
  return {
    killed: result.signal === 'SIGKILL',
    exitCode: result.exitCode ?? -1,
    output: `${String(result.stdout)}\n${String(result.stderr)}`,
  };
}

export const journalFile = (r: TestRoot) => r.at('/var/lib/kinstall/journal.json');

/** A copy of a prepared root (cp -a: modes, symlinks and hard links kept), removed with the others. */
export function cloneRoot(template: TestRoot): TestRoot {
  const root = mkdtempSync(path.join(os.tmpdir(), 'kinstall-root-'));
  assertScratch(root);
  execFileSync('cp', ['-a', `${template.root}/.`, root]);
  const at = (p: string) => path.join(root, path.resolve('/', p));
  return {
    root,
    boot: at('/boot'),
    at,
    cleanup: () => execFileSync('rm', ['-rf', '--one-file-system', root]),
  };
}

export interface Enumeration {
  /** The points at which a run was killed, in order. */
  killed: string[];
  /** The first point at which the run completed instead. */
  completedAt: string;
}

/**
 * Visits `KIND:1`, `KIND:2`, … until `visit` reports a run that was not killed; fails when `max`
 * points were all kills (the guard against a loop that never ends or tests nothing). Up to
 * `gapsThrough`, a run that completes does not end the enumeration: `backup:N` is passed only by a
 * change that keeps a prior state aside (not by a tree renamed as a whole, nor a path changed twice).
 */
export async function enumerateCrashPoints(
  kind: string,
  max: number,
  visit: (point: string, n: number) => Promise<boolean>,
  gapsThrough = 0,
): Promise<Enumeration> {
  const killed: string[] = [];
  for (let n = 1; n <= max; n += 1) {
    const point = `${kind}:${n}`;
    if (await visit(point, n)) killed.push(point);
    else if (n > gapsThrough) return { killed, completedAt: point };
  }
  throw new Error(`${kind}: every point up to ${kind}:${max} killed the run; raise the guard or look for a loop`);
}

/** What one command on one layout needs for its crash enumeration. */
export interface CrashScenario<State> {
  /** A fresh root in the state before the run. */
  fresh(): TestRoot;
  /** The run under test, on that root. */
  args(r: TestRoot): string[];
  /** Runs kinstall on a root (directly, or in the namespace grub-mkconfig needs). */
  run(r: TestRoot, args: string[], point?: string): Promise<RunResult>;
  /** Everything the run may change: trees, firmware variables. */
  state(r: TestRoot): State;
}

/**
 * A kill at POINT: the run must die with its journal on disk, or complete (returns false) with the
 * tree of a successful run. After a kill, an odd N is recovered by `kinstall recover` (the tree must
 * be byte-identical to before), an even N by the next command, the same run again, which recovers
 * first and must leave exactly the result of a successful run.
 */
export function killAndRecover<State>(s: CrashScenario<State>, after: State) {
  return async (point: string, n: number): Promise<boolean> => {
    const r = s.fresh();
    try {
      return await killAndRecoverOn(s, r, after, point, n);
    } finally {
      r.cleanup();
    }
  };
}

async function killAndRecoverOn<State>(
  s: CrashScenario<State>,
  r: TestRoot,
  after: State,
  point: string,
  n: number,
): Promise<boolean> {
  const before = s.state(r);
  const crashed = await s.run(r, s.args(r), point);
  if (!crashed.killed) {
    expect(crashed.exitCode, `${point}: ${crashed.output}`).toBe(0);
    expect(s.state(r), `${point}: a run that was not killed`).toEqual(after);
    return false;
  }
  expect(existsSync(journalFile(r)), `${point}: the killed run left its journal`).toBe(true);
  if (n % 2 === 1) {
    const recovered = await s.run(r, ['recover', '--root', r.root]);
    expect(recovered.exitCode, `${point}: ${recovered.output}`).toBe(0);
    expect(recovered.output, point).toContain('was found: rolled back');
    expect(s.state(r), `${point}: recovered by kinstall recover`).toEqual(before);
  } else {
    const next = await s.run(r, s.args(r));
    expect(next.exitCode, `${point}: ${next.output}`).toBe(0);
    expect(next.output, point).toMatch(/an unfinished kinstall run \(pid \d+, started .*\) was found: rolled back/);
    expect(s.state(r), `${point}: recovered by the next run, which then completed`).toEqual(after);
  }
  expect(existsSync(journalFile(r)), `${point}: journal gone`).toBe(false);
  return true;
}

/**
 * A kill once the run was final (`committed`): recovery completes it, the tree is a successful run's.
 * A run with nothing to complete (every path new) is final once its journal is deleted, which the
 * point follows: there is then nothing to recover.
 */
export async function killPastCommit<State>(s: CrashScenario<State>, after: State): Promise<void> {
  const r = s.fresh();
  try {
    const crashed = await s.run(r, s.args(r), 'committed');
    expect(crashed.killed, crashed.output).toBe(true);
    const recovered = await s.run(r, ['recover', '--root', r.root]);
    expect(recovered.exitCode, recovered.output).toBe(0);
    expect(recovered.output).toMatch(/was found: completed|^nothing to recover$/m);
    expect(s.state(r)).toEqual(after);
    expect(existsSync(journalFile(r))).toBe(false);
  } finally {
    r.cleanup();
  }
}

/** The state a run leaves when it is not killed: from a fresh root of the scenario. */
export async function completedState<State>(s: CrashScenario<State>, roots: ScratchRoots): Promise<State> {
  const r = roots.adopt(s.fresh());
  const result = await s.run(r, s.args(r));
  expect(result.exitCode, result.output).toBe(0);
  return s.state(r);
}

/** A small real initramfs (newc cpio) holding one file that names TAG, so each one differs. */
export function smallCpio(tag: string): Buffer {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinstall-cpio-'));
  try {
    execFileSync('sh', ['-c', 'printf "%s\\n" "$1" > initrd-tag', 'sh', tag], { cwd: dir });
    return execFileSync('sh', ['-c', 'echo initrd-tag | cpio -o -H newc 2>/dev/null'], { cwd: dir });
  } finally {
    execFileSync('rm', ['-rf', dir]);
  }
}
