// The one wrapper around execa: a command over its time limit is stopped with its whole process
// group (what it started too), exit 124 and "timed out"; one within it runs to its own end.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createExec } from '../../src/core/exec.js';
import { KinstallError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';

const log = createLogger({ verbose: false, quiet: true });
const exec = createExec(log, process.env, false);
let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a command over its time limit', () => {
  it('is stopped with what it started: exit 124, and a child that would write later never does', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kinstall-exec-'));
    const late = path.join(dir, 'late');
    const started = Date.now();
    // The shell starts a child that outlives it unless the group is stopped.
    const result = await exec.run('sh', ['-c', `(sleep 1; touch ${late}) & sleep 5`], { timeout: 300, reject: false });
    expect(result.exitCode).toBe(124);
    expect(result.failed).toBe(true);
    expect(result.spawnError).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(4000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(existsSync(late)).toBe(false);
  });

  it('with reject, is an ETOOL error saying it timed out', async () => {
    const error = await exec.run('sleep', ['5'], { timeout: 200 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KinstallError);
    expect((error as KinstallError).code).toBe('ETOOL');
    expect((error as KinstallError).message).toContain('sleep failed (timed out)');
  });

  it('a command within its limit ends on its own, with its exit code and output', async () => {
    const result = await exec.run('sh', ['-c', 'echo out; echo err >&2; exit 3'], { timeout: 5000, reject: false });
    expect(result).toMatchObject({ exitCode: 3, stdout: 'out', stderr: 'err', failed: true });
    expect(result.spawnError).toBeUndefined();
  });
});
