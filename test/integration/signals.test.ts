// Signals at known moments, made by a slow lilo (test/fakes/lilo behind a wrapper that sleeps
// after writing the map): SIGKILL from outside, then recovery; SIGINT/SIGTERM, then a clean rollback.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { describe, expect, it } from 'vitest';
import { kinstall, kinstallBin, top } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';
import { initramfsFixture } from '../helpers/initramfs.js';

const kernel = testKernel();
const V = kernel.version;
const V2 = `${V}-second`;
const LILO = path.join(top, 'test/fakes/lilo');
const LILO_CONF = `boot=/dev/vda\nmap=/boot/map\nimage=/boot/vmlinuz\n    label=linux\n    initrd=/boot/initramfs.img\n    read-only\nimage=/boot/vmlinuz.old\n    label=linux.old\n    initrd=/boot/initramfs.img.old\n    optional\n    read-only\n`;
// After a real (not -t) run, with LILO_SLEEP set: note the pid in LILO_MARK, then sleep.
const SLOW_LILO = `#!/bin/sh
"${LILO}" "$@" || exit $?
case " $* " in *" -t "*) exit 0 ;; esac
[ -n "$LILO_SLEEP" ] || exit 0
echo $$ >> "$LILO_MARK"
exec sleep "$LILO_SLEEP"
`;

const sleepers: number[] = [];
const newRoot = useScratchRoots({
  first: () => {
    for (const pid of sleepers.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  },
});

function liloRoot(): TestRoot {
  const r = newRoot({ config: {} });
  mkdirSync(r.at('/var/fake'), { recursive: true });
  const wrapper = r.at('/var/fake/slow-lilo');
  writeFileSync(wrapper, SLOW_LILO);
  chmodSync(wrapper, 0o755);
  writeFileSync(r.at('/etc/kinstall/config.json'), JSON.stringify({ lilo: { command: wrapper }, targetHooks: 'host' }));
  writeFileSync(r.at('/etc/lilo.conf'), LILO_CONF);
  for (const tag of ['a', 'c']) writeFileSync(r.at(`/var/fake/initrd-${tag}`), initramfsFixture(`prebuilt initramfs ${tag}\n`));
  return r;
}

const env = (r: TestRoot, extra: Record<string, string> = {}) => ({
  LILO_FAKE_LOG: r.at('/var/fake/lilo.log'),
  LILO_MARK: r.at('/var/fake/mark'),
  ...extra,
});
const addArgs = (r: TestRoot, version: string, initrd: string) => [
  'add',
  '--force',
  '--root',
  r.root,
  '--initrd',
  r.at(`/var/fake/initrd-${initrd}`),
  version,
  kernel.image,
];
const marks = (r: TestRoot) =>
  existsSync(r.at('/var/fake/mark')) ? readFileSync(r.at('/var/fake/mark'), 'utf8').trim().split('\n').map(Number) : [];

async function ok(r: TestRoot, args: string[]): Promise<string> {
  const result = await kinstall(args, { env: env(r) });
  expect(result.exitCode, result.stderr).toBe(0);
  return result.stdout + result.stderr;
}

function start(
  r: TestRoot,
  args: string[],
  sleepSeconds: string,
): ResultPromise<{ reject: false; stdin: 'ignore'; env: Record<string, string> }> {
  return execa('node', [kinstallBin, ...args], { reject: false, stdin: 'ignore', env: env(r, { LILO_SLEEP: sleepSeconds }) });
}

/** Waits until the slow lilo has run `count` times (it is then asleep), remembering its pids. */
async function waitForMarks(r: TestRoot, count: number): Promise<void> {
  for (let i = 0; i < 300 && marks(r).length < count; i += 1) await sleep(50);
  expect(marks(r).length).toBe(count);
  sleepers.push(...marks(r));
}

async function installedRoot(): Promise<{ r: TestRoot; before: Record<string, string> }> {
  const r = liloRoot();
  await ok(r, addArgs(r, V, 'a'));
  return { r, before: snapshotTree(r.boot) };
}

describe('SIGKILL from outside while the bootloader tool runs', () => {
  it('add killed after lilo mapped the new files: recover restores them and maps them again', async () => {
    const { r, before } = await installedRoot();
    const run = start(r, addArgs(r, V2, 'c'), '30');
    await waitForMarks(r, 1);
    // lilo has already written a map naming the new kernel: the state recovery must undo.
    expect(readFileSync(r.at('/boot/map'), 'utf8')).toContain(V2);
    run.kill('SIGKILL');
    expect((await run).signal).toBe('SIGKILL');
    const out = await ok(r, ['recover', '--root', r.root]);
    expect(out).toContain('rolled back');
    expect(out).toContain('ran the lilo bootloader step again');
    expect(readFileSync(r.at('/boot/map'), 'utf8')).not.toContain(V2);
    expect(snapshotTree(r.boot)).toEqual(before);
  });
});

describe('SIGINT and SIGTERM roll back and exit 5', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} while lilo runs: EINTERRUPTED, files and map restored, no journal left`, async () => {
      const { r, before } = await installedRoot();
      const run = start(r, addArgs(r, V2, 'c'), '1');
      await waitForMarks(r, 1);
      run.kill(signal);
      const result = await run;
      expect(result.exitCode, String(result.stderr)).toBe(5);
      expect(String(result.stderr)).toMatch(
        new RegExp(`kinstall: EINTERRUPTED: interrupted by ${signal}; rolled back \\d+ change\\(s\\), nothing was changed`),
      );
      expect(existsSync(r.at('/var/lib/kinstall/journal.json'))).toBe(false);
      expect(snapshotTree(r.boot)).toEqual(before);
    });
  }

  it('a second SIGINT during the rollback does not cut it short', async () => {
    const { r, before } = await installedRoot();
    const run = start(r, addArgs(r, V2, 'c'), '1');
    await waitForMarks(r, 1);
    run.kill('SIGINT');
    // The rollback runs lilo again on the restored files: interrupt that run too.
    await waitForMarks(r, 2);
    run.kill('SIGINT');
    const result = await run;
    expect(result.exitCode, String(result.stderr)).toBe(5);
    expect(String(result.stderr)).toContain('received again: the rollback is finishing');
    expect(String(result.stderr)).toContain('EINTERRUPTED: interrupted by SIGINT');
    expect(existsSync(r.at('/var/lib/kinstall/journal.json'))).toBe(false);
    expect(snapshotTree(r.boot)).toEqual(before);
    expect(await ok(r, ['recover', '--root', r.root])).toContain('nothing to recover');
  });
});

describe('a signal stops the command that is running, not only kinstall', () => {
  /** Running (a zombie waiting to be reaped by init has already stopped). */
  const alive = (pid: number) => {
    const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
    return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  };

  it('SIGTERM during a long preinst hook: the hook and what it started are stopped, the run rolled back', async () => {
    const { r, before } = await installedRoot();
    const mark = r.at('/var/fake/hook-pids');
    mkdirSync(r.at('/etc/kernel/preinst.d'), { recursive: true });
    writeFileSync(
      r.at('/etc/kernel/preinst.d/10-slow'),
      `#!/bin/sh\nsleep 60 &\necho "$$ $!" > ${mark}\nwait\necho finished >> ${mark}\n`,
      { mode: 0o755 },
    );
    const run = start(r, addArgs(r, V2, 'c'), '0');
    for (let i = 0; i < 300 && !existsSync(mark); i += 1) await sleep(50);
    const pids = readFileSync(mark, 'utf8').trim().split(' ').map(Number);
    sleepers.push(...pids);
    expect(pids.every(alive)).toBe(true);
    run.kill('SIGTERM');
    const result = await run;
    expect(result.exitCode, String(result.stderr)).toBe(5);
    expect(String(result.stderr)).toMatch(
      /kinstall: EINTERRUPTED: interrupted by SIGTERM; rolled back \d+ change\(s\), nothing was changed/,
    );
    // The hook's shell and its sleep are gone: nothing of the interrupted run goes on.
    expect(pids.filter(alive)).toEqual([]);
    expect(readFileSync(mark, 'utf8')).not.toContain('finished');
    expect(snapshotTree(r.boot)).toEqual(before);
  });
});
