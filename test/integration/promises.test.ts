// Promises the help and docs make that no other test held to: recovery before remove, prune and
// installkernel; verify without the lock; the UKI-only verify message; the --json results of add,
// remove, prune and recover; relative --initrd, --config and --build-dir taken from the cwd.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { installkernel, kinstall, kinstallBin, top } from '../helpers/cli.js';
import { initramfsFixture, silentInitramfs } from '../helpers/initramfs.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot, writeHook } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const holders: Array<() => void> = [];
const scratchRoot = useScratchRoots({
  first: () => {
    for (const stop of holders.splice(0)) stop();
  },
});

function newRoot(): TestRoot {
  const r = scratchRoot({ modules: true });
  writeFileSync(r.at('/etc/prebuilt.img'), initramfsFixture('a prebuilt initramfs'));
  return r;
}

/** compat, with the prebuilt initramfs (no dracut); another version than V is the real image under that name. */
function addArgs(r: TestRoot, version: string): string[] {
  mkdirSync(r.at(`/lib/modules/${version}/kernel`), { recursive: true });
  return ['add', '--force', '--root', r.root, '--layout', 'compat', '--initrd', r.at('/etc/prebuilt.img'), version, kernel.image];
}

async function ok(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const result = await kinstall(args);
  expect(result.exitCode, result.stderr).toBe(0);
  return result;
}

/** Runs an add that SIGKILLs itself at `point`, leaving its journal behind; returns its pid. */
async function killedAdd(r: TestRoot, version: string, point: string): Promise<number> {
  const child = execa('node', [kinstallBin, ...addArgs(r, version)], {
    reject: false,
    stdin: 'ignore',
    env: { KINSTALL_TEST_CRASH_AFTER: point },
  });
  const result = await child;
  expect(result.signal, String(result.stderr)).toBe('SIGKILL');
  expect(existsSync(journal(r))).toBe(true);
  return child.pid ?? 0;
}

const journal = (r: TestRoot) => r.at('/var/lib/kinstall/journal.json');
const recoveredLine = (pid: number) =>
  new RegExp(`^kinstall: warn: an unfinished kinstall run \\(pid ${pid}, started [^)]+\\) was found: rolled back$`, 'm');

/** The line index of the first match, so a test can say which came first. */
const lineOf = (text: string, pattern: RegExp | string) =>
  text.split('\n').findIndex((l) => (typeof pattern === 'string' ? l.includes(pattern) : pattern.test(l)));

describe('changing commands recover a killed run before doing anything', () => {
  // A fresh install of C killed once its kernel was in /boot: without recovery first, C would look installed.
  const A = '5.10.1-a';
  const B = '5.10.2-b';
  const C = '5.10.3-c';
  async function rootWithHalfInstalledC(): Promise<{ r: TestRoot; pid: number; before: Record<string, string> }> {
    const r = newRoot();
    // A hook of every phase, so a removal logs its prerm phase.
    writeHook(r, '/etc/kinstall/hooks.d', '50-note', 'exit 0');
    await ok(addArgs(r, A));
    await ok(addArgs(r, B));
    const before = snapshotTree(r.boot);
    const pid = await killedAdd(r, C, 'op:2');
    expect(existsSync(r.at(`/boot/vmlinuz-${C}`)), 'the killed run placed its kernel').toBe(true);
    return { r, pid, before };
  }

  it('remove: the killed install is rolled back first, then the kernel asked for is removed', async () => {
    const { r, pid, before } = await rootWithHalfInstalledC();
    const result = await kinstall(['remove', '--root', r.root, '--layout', 'compat', A]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(recoveredLine(pid));
    expect(lineOf(result.stderr, recoveredLine(pid))).toBeLessThan(lineOf(result.stderr, '[prerm]'));
    expect(lineOf(result.stderr, recoveredLine(pid))).toBeLessThan(lineOf(result.stderr, `removed ${A} (compat)`));
    expect(existsSync(journal(r))).toBe(false);
    const expected = { ...before };
    for (const name of [`vmlinuz-${A}`, `initramfs-${A}.img`]) delete expected[name];
    expect(snapshotTree(r.boot)).toEqual(expected);
    expect(existsSync(r.at(`/lib/modules/${C}/vmlinuz`)), "the killed run's staged image is gone").toBe(false);
    expect(existsSync(r.at(`/lib/modules/${A}`))).toBe(false);
  }, 60_000);

  it('prune: counts the kernels as they are after the rollback (A and B, not the half-installed C)', async () => {
    const { r, pid } = await rootWithHalfInstalledC();
    const result = await kinstall(['prune', '--keep', '1', '--root', r.root, '--layout', 'compat']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(recoveredLine(pid));
    expect(lineOf(result.stderr, recoveredLine(pid))).toBeLessThan(lineOf(result.stderr, 'keep=1: removing'));
    expect(result.stdout).toBe(`removed ${A}\nkept ${B}`);
    expect(readdirSync(r.boot).sort()).toEqual([`initramfs-${B}.img`, `vmlinuz-${B}`]);
    expect(existsSync(journal(r))).toBe(false);
  }, 60_000);

  it('installkernel: rolls the killed run back, then installs', async () => {
    const { r, pid, before } = await rootWithHalfInstalledC();
    const result = await installkernel([
      C,
      kernel.image,
      '--force',
      '--root',
      r.root,
      '--layout',
      'compat',
      '--initrd',
      r.at('/etc/prebuilt.img'),
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(recoveredLine(pid));
    expect(lineOf(result.stderr, recoveredLine(pid))).toBeLessThan(lineOf(result.stderr, `installing ${C}`));
    expect(existsSync(journal(r))).toBe(false);
    expect(snapshotTree(r.boot)).toEqual({
      ...before,
      [`vmlinuz-${C}`]: expect.stringMatching(/^file 644 /) as string,
      [`initramfs-${C}.img`]: expect.stringMatching(/^file 644 /) as string,
    });
    expect(readFileSync(r.at(`/boot/vmlinuz-${C}`)).equals(readFileSync(kernel.image))).toBe(true);
  }, 60_000);
});

describe('verify', () => {
  it('takes no lock: it boots while another process holds the per-root lock', async () => {
    const r = newRoot();
    writeFileSync(r.at('/etc/prebuilt.img'), silentInitramfs());
    await ok(addArgs(r, V));
    const lock = r.at('/run/lock/kinstall.lock');
    mkdirSync(path.dirname(lock), { recursive: true });
    const holder = spawn('flock', ['--no-fork', lock, 'sleep', '60'], { stdio: 'ignore' });
    holders.push(() => holder.kill());
    const comm = () => (existsSync(`/proc/${holder.pid}/comm`) ? readFileSync(`/proc/${holder.pid}/comm`, 'utf8').trim() : '');
    for (let i = 0; i < 100 && comm() !== 'sleep'; i += 1) await sleep(50);
    expect(comm(), 'flock holds the lock').toBe('sleep');
    writeFileSync(lock, `${holder.pid}\n`);

    // A locking command gives up after 1 s here (ELOCKED, exit 4); verify boots and reaches its verdict.
    const env = { KINSTALL_LOCK_TIMEOUT: '1' };
    const locked = await kinstall(['recover', '--root', r.root], { env });
    expect(locked.exitCode, 'the lock is really held').toBe(4);
    const result = await kinstall(['verify', '--root', r.root, '--timeout', '3', '--cmdline', 'loglevel=0', V], { env });
    expect(result.stderr).not.toContain('waiting for another kinstall');
    expect(result.stderr).not.toContain('ELOCKED');
    expect(result.stderr).toContain(`booting ${r.at(`/boot/vmlinuz-${V}`)} with ${r.at(`/boot/initramfs-${V}.img`)} in QEMU`);
    expect(result.stdout).toContain(`${V}: timeout (`);
    expect(result.exitCode).toBe(8);
    expect(comm(), 'the holder kept the lock throughout').toBe('sleep');
  }, 60_000);

  it('a UKI-only install: says QEMU cannot boot a unified kernel image directly, exit 8', async () => {
    const r = newRoot();
    mkdirSync(r.at('/efi/EFI/Linux'), { recursive: true });
    mkdirSync(r.at('/efi/loader'), { recursive: true });
    mkdirSync(r.at('/etc/kernel'), { recursive: true });
    writeFileSync(r.at('/etc/kernel/cmdline'), 'ro\n');
    writeFileSync(r.at('/etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    writeFileSync(r.at('/etc/os-release'), 'NAME=Test\nID=test\n');
    await ok(['add', '--root', r.root, '--layout', 'uki', '--initrd', r.at('/etc/prebuilt.img'), V, kernel.image]);
    expect(readdirSync(r.at('/efi/EFI/Linux'))).toEqual([`0123456789abcdef0123456789abcdef-${V}.efi`]);
    for (const layout of [[], ['--layout', 'uki']]) {
      const result = await kinstall(['verify', '--root', r.root, ...layout, V]);
      expect(result.stderr).toBe(
        `kinstall: EVERIFY: ${V} did not boot in QEMU: only a unified kernel image is installed, which QEMU cannot boot directly`,
      );
      expect(result.stdout).toBe('');
      expect(result.exitCode).toBe(8);
    }
  }, 60_000);
});

describe('--json results on success', () => {
  it('add: version, layout, generator, staged and installed files, the plan, hooks, pruned', async () => {
    const r = newRoot();
    const result = await ok([...addArgs(r, V), '--json']);
    const boot = (name: string) => r.at(`/boot/${name}-${V}`);
    const staged = (name: string) => r.at(`/lib/modules/${V}/${name}`);
    expect(JSON.parse(result.stdout)).toEqual({
      version: V,
      layout: 'compat',
      initrdGenerator: 'prebuilt',
      dryRun: false,
      staged: [staged('vmlinuz'), staged('System.map'), staged('config')],
      installed: [boot('vmlinuz'), boot('System.map'), boot('config'), r.at(`/boot/initramfs-${V}.img`)],
      plan: {
        place: [
          { from: staged('vmlinuz'), to: boot('vmlinuz'), mode: 0o644 },
          { from: staged('System.map'), to: boot('System.map'), mode: 0o644 },
          { from: staged('config'), to: boot('config'), mode: 0o644 },
          { from: expect.stringMatching(/\/kinstall-initrd\.img$/) as string, to: r.at(`/boot/initramfs-${V}.img`), mode: 0o644 },
        ],
        write: [],
        link: [],
        remove: [],
        image: boot('vmlinuz'),
      },
      // The shipped 50-dkms is not started: no dkms in this root, and it acts in preinst only.
      hooks: { preinst: [], postinst: [] },
      hookOrder: [
        {
          name: '50-dkms',
          path: path.join(top, 'hooks.d/50-dkms'),
          protocol: 'kinstall',
          phase: 'preinst',
          runs: false,
          reason: `it needs dkms, which is not installed in ${r.root} (its "# kinstall-needs:" line)`,
        },
        {
          name: '50-dkms',
          path: path.join(top, 'hooks.d/50-dkms'),
          protocol: 'kinstall',
          phase: 'postinst',
          runs: false,
          reason: 'it acts only in preinst (its "# kinstall-phases:" line)',
        },
      ],
      pruned: [],
      madeRoom: [],
    });
    expect(readFileSync(r.at(`/boot/initramfs-${V}.img`)).equals(initramfsFixture('a prebuilt initramfs'))).toBe(true);
  }, 60_000);

  it('remove: version, layout, the files removed, modulesRemoved, dryRun', async () => {
    const r = newRoot();
    await ok(addArgs(r, V));
    const result = await ok(['remove', '--json', '--root', r.root, '--layout', 'compat', V]);
    expect(JSON.parse(result.stdout)).toEqual({
      version: V,
      layout: 'compat',
      removed: ['vmlinuz', 'System.map', 'config'].map((n) => r.at(`/boot/${n}-${V}`)).concat(r.at(`/boot/initramfs-${V}.img`)),
      modulesRemoved: true,
      dryRun: false,
    });
    expect(readdirSync(r.boot)).toEqual([]);
    expect(existsSync(r.at(`/lib/modules/${V}`))).toBe(false);
  }, 60_000);

  it('prune: keep, kept, every removal as remove reports it, dryRun', async () => {
    const r = newRoot();
    for (const version of ['5.10.1-a', '5.10.2-b', '5.10.3-c']) await ok(addArgs(r, version));
    const result = await ok(['prune', '--json', '--keep', '1', '--root', r.root, '--layout', 'compat']);
    const removal = (version: string) => ({
      version,
      layout: 'compat',
      removed: [r.at(`/boot/vmlinuz-${version}`), r.at(`/boot/initramfs-${version}.img`)],
      modulesRemoved: true,
      dryRun: false,
    });
    expect(JSON.parse(result.stdout)).toEqual({
      keep: 1,
      kept: ['5.10.3-c'],
      removed: [removal('5.10.1-a'), removal('5.10.2-b')],
      dryRun: false,
    });
    expect(readdirSync(r.boot).sort()).toEqual(['initramfs-5.10.3-c.img', 'vmlinuz-5.10.3-c']);
  }, 60_000);

  it("recover: the outcome, what was restored and dropped, the dead run's pid and start time", async () => {
    const r = newRoot();
    await ok(addArgs(r, V));
    const before = snapshotTree(r.root);
    const started = Date.now();
    const pid = await killedAdd(r, '5.10.3-c', 'op:2');
    const result = await ok(['recover', '--json', '--root', r.root]);
    const report = JSON.parse(result.stdout) as {
      outcome: string;
      pid: number;
      started: string;
      restored: string[];
      dropped: string[];
      reactivated: string[];
      warnings: string[];
    };
    expect(report).toMatchObject({ outcome: 'rolled back', pid, reactivated: [], warnings: [] });
    expect(Date.parse(report.started)).toBeGreaterThanOrEqual(started - 1000);
    expect(Date.parse(report.started)).toBeLessThanOrEqual(Date.now());
    expect(report.restored).toEqual(
      expect.arrayContaining([r.at('/boot/vmlinuz-5.10.3-c'), r.at('/lib/modules/5.10.3-c/vmlinuz')]),
    );
    for (const file of [...report.restored, ...report.dropped]) expect(file.startsWith(`${r.root}/`), file).toBe(true);
    expect(existsSync(journal(r))).toBe(false);
    const after = snapshotTree(r.root);
    // Left as they were before recovery: the modules dir the test made (addArgs) and the lock's
    // directory the killed run made (a SIGKILLed run cannot remove it).
    expect(after).toEqual({
      ...before,
      'lib/modules/5.10.3-c': 'dir 755',
      'lib/modules/5.10.3-c/kernel': 'dir 755',
      run: 'dir 755',
      'run/lock': 'dir 755',
    });
  }, 60_000);
});

describe('relative paths are taken from the current directory', () => {
  it('add --initrd FILE --config FILE', async () => {
    const r = newRoot();
    const cwd = r.at('/home/admin');
    mkdirSync(path.join(cwd, 'conf'), { recursive: true });
    mkdirSync(r.at('/boot2'));
    writeFileSync(path.join(cwd, 'my-initrd.img'), initramfsFixture('initramfs from the cwd'));
    // The config puts the kernel in /boot2: proof that this file, and not the root's, was read.
    writeFileSync(path.join(cwd, 'conf/kinstall.json'), JSON.stringify({ bootDir: '/boot2', layout: 'compat' }));
    const result = await kinstall(
      ['add', '--root', r.root, '--initrd', 'my-initrd.img', '--config', 'conf/kinstall.json', V, kernel.image],
      { cwd },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readdirSync(r.boot)).toEqual([]);
    expect(readdirSync(r.at('/boot2')).sort()).toEqual([`System.map-${V}`, `config-${V}`, `initramfs-${V}.img`, `vmlinuz-${V}`]);
    expect(readFileSync(r.at(`/boot2/initramfs-${V}.img`)).equals(initramfsFixture('initramfs from the cwd'))).toBe(true);
  }, 60_000);

  it('stage --build-dir DIR', async () => {
    const r = newRoot();
    const cwd = r.at('/var/tmp');
    const build = path.join(cwd, 'linux-build');
    mkdirSync(path.join(build, 'include/config'), { recursive: true });
    mkdirSync(path.join(build, 'arch/x86/boot'), { recursive: true });
    writeFileSync(path.join(build, 'include/config/kernel.release'), `${V}\n`);
    copyFileSync(kernel.image, path.join(build, 'arch/x86/boot/bzImage'));
    copyFileSync(kernel.systemMap, path.join(build, 'System.map'));
    copyFileSync(kernel.config, path.join(build, '.config'));
    const result = await kinstall(['stage', '--root', r.root, '--build-dir', 'linux-build'], { cwd });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe(`staged ${V} in ${r.at(`/lib/modules/${V}`)}`);
    expect(readFileSync(r.at(`/lib/modules/${V}/vmlinuz`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(readFileSync(r.at(`/lib/modules/${V}/config`)).equals(readFileSync(kernel.config))).toBe(true);
  }, 60_000);
});
