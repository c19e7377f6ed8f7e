// The per-root lock (an flock): a second run waits for the first, times out with ELOCKED while a script holds it,
// is free again after a SIGKILL; concurrent installs serialize and leave a consistent boot dir.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { kinstall, kinstallBin } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';
import { testContext } from '../helpers/context.js';
import { withLock } from '../../src/core/transaction/lock.js';

const kernel = testKernel();
const V = kernel.version;
let root: TestRoot;
const children: Array<{ kill: () => void }> = [];
const newRoot = useScratchRoots({
  first: () => {
    for (const child of children.splice(0)) child.kill();
  },
});

function add(r: TestRoot, version: string, ...rest: string[]) {
  mkdirSync(r.at(`/lib/modules/${version}/kernel`), { recursive: true });
  return kinstall([
    'add',
    '--force',
    '--root',
    r.root,
    '--layout',
    'compat',
    '--initramfs',
    'none',
    ...rest,
    version,
    kernel.image,
  ]);
}

/** Hooks that log `start V` (preinst) and `end V` (postinst), sleeping in between for a slow run. */
function loggingHooks(r: TestRoot, sleepSeconds: number): string {
  const dir = r.at('/etc/kinstall/hooks.d');
  mkdirSync(dir, { recursive: true });
  const log = r.at('/var/tmp/hook-order');
  mkdirSync(r.at('/var/tmp'), { recursive: true });
  writeFileSync(
    `${dir}/10-log`,
    `#!/bin/sh\nif [ "$KINSTALL_PHASE" = preinst ]; then echo "start $1" >> ${log}; sleep ${sleepSeconds}; else echo "end $1" >> ${log}; fi\n`,
  );
  chmodSync(`${dir}/10-log`, 0o755);
  return log;
}

async function waitFor(file: string): Promise<void> {
  for (let i = 0; i < 200 && !existsSync(file); i += 1) await sleep(50);
  expect(existsSync(file), `${file} never appeared`).toBe(true);
}

const lockPath = (r: TestRoot) => r.at('/run/lock/kinstall.lock');

/** Another holder of the lock, as a shell script would take it: util-linux flock(1) running sleep. */
async function holdLock(r: TestRoot): Promise<number> {
  mkdirSync(r.at('/run/lock'), { recursive: true });
  const holder = spawn('flock', ['--no-fork', lockPath(r), 'sleep', '60'], { stdio: 'ignore' });
  children.push({ kill: () => holder.kill() });
  const comm = () => (existsSync(`/proc/${holder.pid}/comm`) ? readFileSync(`/proc/${holder.pid}/comm`, 'utf8').trim() : '');
  for (let i = 0; i < 100 && comm() !== 'sleep'; i += 1) await sleep(50);
  expect(comm(), 'flock holds the lock').toBe('sleep');
  writeFileSync(lockPath(r), `${holder.pid}\n`);
  return holder.pid ?? 0;
}

describe('one kinstall at a time per root', () => {
  it('a second run waits for the first, says so once, then proceeds', async () => {
    root = newRoot();
    const order = loggingHooks(root, 3);
    const first = add(root, V);
    await waitFor(order);
    const holder = readFileSync(lockPath(root), 'utf8').trim().split(/\s+/)[0];
    const second = await add(root, '6.6.6-second');
    const firstResult = await first;
    expect(firstResult.exitCode, firstResult.stderr).toBe(0);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stderr.match(/waiting for another kinstall/g)).toHaveLength(1);
    expect(second.stderr).toContain(`waiting for another kinstall (pid ${holder}) to finish…`);
    expect(readFileSync(order, 'utf8')).toBe(`start ${V}\nend ${V}\nstart 6.6.6-second\nend 6.6.6-second\n`);
    expect(existsSync(lockPath(root))).toBe(false);
  }, 60_000);

  it('gives up after lockTimeout with ELOCKED naming the holder, nothing changed', async () => {
    root = newRoot();
    const holder = await holdLock(root);
    const started = Date.now();
    mkdirSync(root.at(`/lib/modules/${V}/kernel`), { recursive: true });
    const before = snapshotTree(root.root);
    const result = await kinstall(['add', '--root', root.root, '--layout', 'compat', '--initramfs', 'none', V, kernel.image], {
      env: { KINSTALL_LOCK_TIMEOUT: '1' },
    });
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toMatch(
      new RegExp(`^kinstall: ELOCKED: another kinstall \\(pid ${holder}\\) still holds \\S+kinstall\\.lock after 1 s`, 'm'),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(snapshotTree(root.root)).toEqual(before);
  }, 30_000);

  it('list and --dry-run do not wait for the lock', async () => {
    root = newRoot();
    await holdLock(root);
    const env = { KINSTALL_LOCK_TIMEOUT: '30' };
    const dry = await kinstall(
      ['add', '--dry-run', '--root', root.root, '--layout', 'compat', '--initramfs', 'none', V, kernel.image],
      { env },
    );
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stderr).not.toContain('waiting');
    const list = await kinstall(['list', '--root', root.root, '--layout', 'compat'], { env });
    expect(list.exitCode, list.stderr).toBe(0);
  }, 30_000);

  it("list during a running install leaves that run's journal alone; the install completes", async () => {
    root = newRoot();
    const order = loggingHooks(root, 3);
    const first = add(root, V);
    await waitFor(order);
    expect(existsSync(root.at('/var/lib/kinstall/journal.json')), 'the running install has a journal').toBe(true);
    const list = await kinstall(['list', '--root', root.root, '--layout', 'compat']);
    expect(list.exitCode, list.stderr).toBe(0);
    expect(list.stderr).toMatch(/another kinstall \(pid \d+\) is running: showing the state as it is now/);
    expect(list.stderr).not.toContain('rolled back');
    const firstResult = await first;
    expect(firstResult.exitCode, firstResult.stderr).toBe(0);
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(existsSync(root.at('/var/lib/kinstall/journal.json'))).toBe(false);
  }, 60_000);

  it('a run killed with SIGKILL holds nothing: the next one goes ahead at once (and recovers it)', async () => {
    root = newRoot();
    mkdirSync(root.at(`/lib/modules/${V}/kernel`), { recursive: true });
    const killed = await execa(
      'node',
      [kinstallBin, 'add', '--root', root.root, '--layout', 'compat', '--initramfs', 'none', V, kernel.image],
      {
        reject: false,
        stdin: 'ignore',
        env: { KINSTALL_TEST_CRASH_AFTER: 'step:commit' },
      },
    );
    expect(killed.signal).toBe('SIGKILL');
    // The file may stay behind, naming the dead run; no process holds its lock any more.
    const result = await add(root, V);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).not.toContain('waiting for another kinstall');
    expect(result.stderr).toContain('was found: rolled back');
    expect(existsSync(root.at(`/boot/vmlinuz-${V}`))).toBe(true);
    expect(existsSync(lockPath(root))).toBe(false);
  }, 30_000);

  it('two installs of the same version serialize: the second keeps the first as .old', async () => {
    root = newRoot();
    const order = loggingHooks(root, 1);
    const results = await Promise.all([add(root, V), add(root, V)]);
    for (const r of results) expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(order, 'utf8')).toBe(`start ${V}\nend ${V}\nstart ${V}\nend ${V}\n`);
    const image = readFileSync(kernel.image);
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}`)).equals(image)).toBe(true);
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}.old`)).equals(image)).toBe(true);
    expect(readFileSync(root.at(`/boot/System.map-${V}.old`)).equals(readFileSync(kernel.systemMap))).toBe(true);
    expect(readFileSync(root.at('/var/log/installkernel.log'), 'utf8').match(/\tkinstall\t/g)).toHaveLength(2);
  }, 60_000);

  it('locks taken and released in a tight loop by several runs at once: the lock directory a releasing run removes never fails a waiter', async () => {
    const r = newRoot();
    const ctx = await testContext(r.root);
    let inside = 0;
    let most = 0;
    const worker = async () => {
      for (let i = 0; i < 12; i += 1) {
        await withLock(ctx, async () => {
          inside += 1;
          most = Math.max(most, inside);
          await sleep(1);
          inside -= 1;
        });
      }
    };
    await Promise.all([worker(), worker(), worker(), worker(), worker()]);
    expect(most).toBe(1);
    // Each run unlinked the lock file it held as it released it.
    expect(existsSync(r.at('/run/lock/kinstall.lock'))).toBe(false);
  }, 120_000);

  it('four installs of different versions started at once all complete, one after another', async () => {
    root = newRoot();
    symlinkSync('vmlinuz-none', root.at('/boot/vmlinuz'));
    const order = loggingHooks(root, 1);
    const versions = ['6.1.1-a', '6.1.2-b', '6.1.3-c', '6.1.4-d'];
    const results = await Promise.all(versions.map((v) => add(root as TestRoot, v)));
    for (const r of results) expect(r.exitCode, r.stderr).toBe(0);
    const lines = readFileSync(order, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(8);
    const sequence: string[] = [];
    for (let i = 0; i < lines.length; i += 2) {
      const v = (lines[i] ?? '').replace(/^start /, '');
      expect(lines.slice(i, i + 2)).toEqual([`start ${v}`, `end ${v}`]);
      sequence.push(v);
    }
    expect([...sequence].sort()).toEqual(versions);
    const history = readFileSync(root.at('/var/lib/kinstall/history.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { version: string; time: string });
    expect(history.map((r) => r.version)).toEqual(sequence);
    const times = history.map((r) => Date.parse(r.time));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    const image = readFileSync(kernel.image);
    for (const v of versions) {
      expect(readFileSync(root.at(`/boot/vmlinuz-${v}`)).equals(image)).toBe(true);
      expect(existsSync(root.at(`/boot/vmlinuz-${v}.old`))).toBe(false);
    }
    expect(readlinkSync(root.at('/boot/vmlinuz'))).toBe(`vmlinuz-${sequence[3]}`);
    expect(readlinkSync(root.at('/boot/vmlinuz.old'))).toBe(`vmlinuz-${sequence[2]}`);
    const listed = await kinstall(['list', '--json', '--root', root.root, '--layout', 'compat']);
    expect((JSON.parse(listed.stdout) as Array<{ version: string }>).map((k) => k.version).sort()).toEqual(versions);
  }, 120_000);
});
