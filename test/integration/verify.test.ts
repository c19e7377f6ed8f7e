// kinstall verify boots what kinstall add installed in real QEMU (TCG): a good kernel and initramfs
// pass on their init's milestone, a damaged initramfs, a failing init or a non-kernel image fail
// with their verdict and exit code 8.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { kinstall, kinstallBin, top } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { scriptedInitramfs, silentInitramfs } from '../helpers/initramfs.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();
let root: TestRoot;
const fileRoots = useScratchRoots({ after: 'all' });

/** A root with the kernel installed by kinstall add (compat layout, real dracut); one per test, from a copy. */
let pristine: TestRoot;
beforeAll(async () => {
  pristine = fileRoots({ modules: true });
  const added = await kinstall(['add', '--root', pristine.root, '--layout', 'compat', '--initramfs', 'dracut', V, kernel.image]);
  expect(added.exitCode).toBe(0);
}, 120_000);

function freshRoot(): TestRoot {
  root = newRoot({ config: false });
  execFileSync('cp', ['-a', `${pristine.boot}/.`, root.boot]);
  execFileSync('cp', ['-a', pristine.at('/etc/kinstall/config.json'), root.at('/etc/kinstall/config.json')]);
  return root;
}

const noQemuLeft = () => {
  const procs = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  expect(procs.split('\n').filter((l) => l.includes('qemu-system') && l.includes(root.root))).toEqual([]);
};

describe('kinstall verify', () => {
  it('passes for the kernel and dracut initramfs kinstall installed', async () => {
    const r = freshRoot();
    const result = await kinstall(['verify', '--root', r.root, V]);
    expect(result.exitCode).toBe(0);
    // dracut's shell init (-m base): its banner is the milestone, before it refuses to go on without root=.
    expect(result.stdout).toMatch(
      new RegExp(
        `^${V.replace(/\./g, '\\.')}: pass: reached dracut's init in the initramfs: dracut: \\S.* \\(\\d+(\\.\\d)? s\\)$`,
        'm',
      ),
    );
    noQemuLeft();
  }, 120_000);

  it('--json gives version, verdict, lines and seconds', async () => {
    const r = freshRoot();
    const result = await kinstall(['verify', '--json', '--root', r.root, V]);
    expect(result.exitCode).toBe(0);
    const report = JSON.parse(result.stdout) as {
      version: string;
      verdict: string;
      milestone: string;
      cause: string;
      lines: string[];
      seconds: number;
    };
    expect(report.version).toBe(V);
    expect(report.verdict).toBe('pass');
    expect(report.milestone).toBe("dracut's init in the initramfs");
    expect(report.cause).toMatch(/^dracut: \S/);
    expect(report.lines.some((l) => l.includes('Run /init as init process'))).toBe(true);
    expect(report.lines.length).toBeLessThanOrEqual(15);
    expect(report.seconds).toBeGreaterThan(0);
  }, 120_000);

  it('a truncated initramfs gives initramfs-unpack-failed, exit 8', async () => {
    const r = freshRoot();
    const initrd = r.at(`/boot/initramfs-${V}.img`);
    truncateSync(initrd, Math.floor(statSync(initrd).size / 2));
    const result = await kinstall(['verify', '--root', r.root, V]);
    expect(result.stdout).toMatch(
      new RegExp(`^${V.replace(/\./g, '\\.')}: initramfs-unpack-failed: Initramfs unpacking failed`, 'm'),
    );
    expect(result.stdout).toContain('Initramfs unpacking failed');
    expect(result.stderr).toContain(`kinstall: EVERIFY: ${V} did not boot in QEMU: initramfs-unpack-failed`);
    expect(result.exitCode).toBe(8);
    noQemuLeft();
  }, 120_000);

  it('an init the kernel cannot execute is a kernel panic even with printk.time=0 in the command line, exit 8', async () => {
    const r = freshRoot();
    // A newc cpio whose /init is not executable: the kernel prints "Failed to execute /init" and panics.
    const tree = mkdtempSync(path.join(os.tmpdir(), 'kinstall-badinit-'));
    writeFileSync(path.join(tree, 'init'), '#!/bin/sh\necho never runs\n', { mode: 0o644 });
    const cpio = execFileSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: tree, input: 'init\n' });
    rmSync(tree, { recursive: true, force: true });
    writeFileSync(r.at(`/boot/initramfs-${V}.img`), cpio);
    const result = await kinstall(['verify', '--root', r.root, '--cmdline', 'printk.time=0', V]);
    expect(result.stdout).toContain(`${V}: kernel-panic`);
    expect(result.stdout).toMatch(/Failed to execute \/init|No working init found/);
    expect(result.exitCode).toBe(8);
    noQemuLeft();
  }, 120_000);

  it("random bytes instead of a kernel give no-output with qemu's reason, exit 8", async () => {
    const r = freshRoot();
    writeFileSync(r.at(`/boot/vmlinuz-${V}`), randomBytes(4 * 1024 * 1024));
    const result = await kinstall(['verify', '--json', '--root', r.root, V]);
    expect(result.exitCode).toBe(8);
    const report = JSON.parse(result.stdout) as { verdict: string; lines: string[] };
    expect(report.verdict).toBe('no-output');
    expect(report.lines.join('\n')).toContain('linux kernel too old');
  }, 120_000);

  it('--timeout bounds the boot: a kernel that stays silent until the limit gives timeout, exit 8, and no qemu left', async () => {
    // Deterministic under any load: the kernel prints nothing (loglevel=0) and the initramfs's init
    // sleeps without a word, so the console is empty when the limit stops QEMU, however fast it ran.
    const r = freshRoot();
    writeFileSync(r.at(`/boot/initramfs-${V}.img`), silentInitramfs());
    const started = Date.now();
    const result = await kinstall(['verify', '--json', '--timeout', '2', '--cmdline', 'loglevel=0', '--root', r.root, V]);
    const report = JSON.parse(result.stdout) as { verdict: string; lines: string[]; seconds: number };
    expect(report.verdict).toBe('timeout');
    expect(report.lines).toEqual([]);
    expect(report.seconds).toBeGreaterThanOrEqual(2);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(result.exitCode).toBe(8);
    noQemuLeft();
  }, 60_000);

  it('--timeout wins over a console that showed init starting: timeout, exit 8', async () => {
    // The kernel reaches "Run /init as init process", then init stays silent: no verdict but the limit.
    const r = freshRoot();
    writeFileSync(r.at(`/boot/initramfs-${V}.img`), silentInitramfs());
    const result = await kinstall(['verify', '--timeout', '30', '--root', r.root, V]);
    expect(result.stdout).toMatch(new RegExp(`^${V.replace(/\./g, '\\.')}: timeout \\(\\d+(\\.\\d)? s\\)$`, 'm'));
    expect(result.stdout).toContain('Run /init as init process');
    expect(result.stderr).toContain(`kinstall: EVERIFY: ${V} did not boot in QEMU: timeout`);
    expect(result.exitCode).toBe(8);
    noQemuLeft();
  }, 90_000);

  it('SIGINT stops qemu (its whole process group) and reports EINTERRUPTED', async () => {
    const r = freshRoot();
    const child = execa('node', [kinstallBin, 'verify', '--root', r.root, V], { reject: false, stdin: 'ignore' });
    await new Promise<void>((resolve) => {
      child.stderr?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('booting')) setTimeout(resolve, 300);
      });
    });
    child.kill('SIGINT');
    const result = await child;
    expect(String(result.stderr)).toContain(
      'kinstall: EINTERRUPTED: interrupted by SIGINT; QEMU was stopped; nothing was changed',
    );
    expect(result.exitCode).toBe(5);
    noQemuLeft();
  }, 60_000);

  it('a version that is not installed is ENOTINSTALLED, exit 3', async () => {
    const r = freshRoot();
    const result = await kinstall(['verify', '--root', r.root, '9.9.9-none']);
    expect(result.stderr).toMatch(/^kinstall: ENOTINSTALLED: kernel 9\.9\.9-none is not installed/);
    expect(result.exitCode).toBe(3);
  });

  it('without qemu on PATH names the Debian package, exit 4', async () => {
    const r = freshRoot();
    const bin = mkdtempSync(path.join(os.tmpdir(), 'kinstall-path-'));
    symlinkSync(process.execPath, path.join(bin, 'node'));
    try {
      const result = await kinstall(['verify', '--root', r.root, V], { env: { PATH: bin } });
      expect(result.stderr.trim()).toBe(
        'kinstall: ENOQEMU: qemu-system-x86_64 not found on PATH: install the Debian package qemu-system-x86',
      );
      expect(result.exitCode).toBe(4);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('a bad --timeout is a usage error', async () => {
    const r = freshRoot();
    const result = await kinstall(['verify', '--timeout', 'soon', '--root', r.root, V]);
    expect(result.stderr).toContain('--timeout takes a whole number of seconds');
    expect(result.exitCode).toBe(2);
  });
});

describe('--layout on a root holding one version in two layouts', () => {
  // compat without an initramfs, bls with a prebuilt one (the silent init): the same version twice.
  const describeRoots = useScratchRoots({ after: 'all' });
  let two: TestRoot;
  beforeAll(async () => {
    two = describeRoots({ modules: true });
    mkdirSync(two.at('/efi/loader/entries'), { recursive: true });
    mkdirSync(two.at('/etc/kernel'), { recursive: true });
    writeFileSync(two.at('/etc/kernel/cmdline'), 'ro\n');
    writeFileSync(two.at('/etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    writeFileSync(two.at('/etc/prebuilt.img'), silentInitramfs());
    for (const args of [
      ['--layout', 'compat', '--initramfs', 'none'],
      ['--layout', 'bls', '--initrd', two.at('/etc/prebuilt.img')],
    ]) {
      const added = await kinstall(['add', '--root', two.root, ...args, V, kernel.image]);
      expect(added.exitCode, added.stderr).toBe(0);
    }
  }, 120_000);

  const listed = async (...layout: string[]) => {
    const result = await kinstall(['list', '--json', '--root', two.root, ...layout]);
    expect(result.exitCode, result.stderr).toBe(0);
    return (JSON.parse(result.stdout) as Array<{ version: string; layout: string; files: string[] }>).map((k) => [
      k.layout,
      k.files.map((f) => path.relative(two.root, f)).sort(),
    ]);
  };

  it("list --layout NAME lists only that layout's kernels; without it, both", async () => {
    const compat = [['compat', [`boot/System.map-${V}`, `boot/config-${V}`, `boot/vmlinuz-${V}`]]];
    expect(await listed('--layout', 'compat')).toEqual(compat);
    const bls = await listed('--layout', 'bls');
    expect(bls.map(([layout]) => layout)).toEqual(['bls']);
    expect(bls[0]?.[1]).toEqual(
      expect.arrayContaining([expect.stringMatching(new RegExp(`^efi/0123456789abcdef0123456789abcdef/${V}/linux$`))]),
    );
    expect((await listed()).map(([layout]) => layout).sort()).toEqual(['bls', 'compat']);
    // The text form too.
    const text = await kinstall(['list', '--root', two.root, '--layout', 'compat']);
    expect(
      text.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('\t').slice(0, 2)),
    ).toEqual([[V, 'compat']]);
  }, 60_000);

  it("verify --layout compat boots compat's files: no initramfs was installed, and the verdict says so, exit 8", async () => {
    const result = await kinstall(['verify', '--root', two.root, '--layout', 'compat', '--timeout', '60', V]);
    expect(result.stderr).toContain(`booting ${two.at(`/boot/vmlinuz-${V}`)} without an initramfs (none is installed) in QEMU`);
    expect(result.stdout).toMatch(
      new RegExp(
        `^${V.replace(/\./g, '\\.')}: no-initramfs: no initramfs is installed for this kernel, so it found no init to run \\(`,
        'm',
      ),
    );
    expect(result.stdout).toContain('Kernel panic - not syncing');
    expect(result.stderr).toContain(`kinstall: EVERIFY: ${V} did not boot in QEMU: no-initramfs`);
    expect(result.exitCode).toBe(8);
  }, 120_000);

  it("verify --layout bls boots bls's kernel and initramfs", async () => {
    const result = await kinstall([
      'verify',
      '--root',
      two.root,
      '--layout',
      'bls',
      '--timeout',
      '2',
      '--cmdline',
      'loglevel=0',
      V,
    ]);
    const entryDir = two.at(`/efi/0123456789abcdef0123456789abcdef/${V}`);
    expect(result.stderr).toContain(`booting ${entryDir}/linux with ${entryDir}/initrd in QEMU`);
    expect(result.stdout).toContain(`${V}: timeout (`);
    expect(result.exitCode).toBe(8);
  }, 60_000);
});

describe('verify judges systemd in the initramfs on its milestones', () => {
  it("passes on basic.target for Debian's kernel with a real dracut initramfs that runs systemd", async () => {
    const sd = newRoot({ modules: true, config: false });
    const dracutArgs = [
      '--conf',
      '/dev/null',
      '--confdir',
      sd.at('/etc/dracut-empty.conf.d'),
      '-m',
      'base systemd-initrd dracut-systemd',
      '--add-drivers',
      'virtio_blk',
    ];
    writeFileSync(sd.at('/etc/kinstall/config.json'), JSON.stringify({ dracut: { args: dracutArgs } }));
    const added = await kinstall(['add', '--root', sd.root, '--layout', 'compat', '--initramfs', 'dracut', V, kernel.image]);
    expect(added.exitCode, added.stderr).toBe(0);
    // quiet in the target's command line would hide the milestone: verify drops it.
    const result = await kinstall(['verify', '--root', sd.root, '--cmdline', 'quiet', V]);
    expect(result.stdout).toMatch(
      new RegExp(
        `^${V.replace(/\./g, '\\.')}: pass: reached systemd's basic system in the initramfs: \\[  OK  \\] Reached target basic\\.target - Basic System\\. \\(`,
        'm',
      ),
    );
    expect(result.stdout).toContain('systemd[1]:');
    expect(result.stdout).not.toContain('\x1b[');
    expect(result.exitCode).toBe(0);
  }, 180_000);

  it('a self-built kernel whose systemd cannot mount its API filesystems is init-failed, naming the line, exit 8', async () => {
    // The self-built kernel (scripts/build-test-kernel.sh) with an init that prints what systemd 252
    // printed on a kernel without cgroups (issue 11), then freezes as systemd does.
    const kbuild = execFileSync('bash', [path.join(top, 'scripts/build-test-kernel.sh')], { encoding: 'utf8' }).trim();
    const r = freshRoot();
    writeFileSync(r.at(`/boot/vmlinuz-${V}`), readFileSync(path.join(kbuild, 'arch/x86/boot/bzImage')));
    const script = [
      'kmsg 4 "systemd[1]: Failed to find module \'autofs4\'"',
      'kmsg 3 "systemd[1]: Failed to mount cgroup2 at /sys/fs/cgroup: No such device"',
      "printf '[\\033[0;1;31m!!!!!!\\033[0m] Failed to mount API filesystems.\\n'",
      'kmsg 0 "systemd[1]: Freezing execution."',
      'while :; do read -r _; done',
    ].join('\n');
    writeFileSync(r.at(`/boot/initramfs-${V}.img`), scriptedInitramfs(kbuild, script));
    const result = await kinstall(['verify', '--root', r.root, V]);
    expect(result.stdout).toMatch(
      new RegExp(
        `^${V.replace(/\./g, '\\.')}: init-failed: the initramfs's init gave up: \\[!!!!!!\\] Failed to mount API filesystems\\. \\(`,
        'm',
      ),
    );
    expect(result.stdout).toContain("systemd[1]: Failed to find module 'autofs4'");
    expect(result.stderr).toContain(`kinstall: EVERIFY: ${V} did not boot in QEMU: init-failed`);
    expect(result.exitCode).toBe(8);
    noQemuLeft();
  }, 120_000);
});
