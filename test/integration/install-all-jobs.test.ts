// installkernel --all --jobs N: the initramfs generations run ahead of their kernel's turn, the
// installs stay one transaction at a time. Real dracut (the tests' fast config) on copies of the
// real kernel staged under four versions; the result must be the one --jobs 1 gives.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { installkernel, installkernelBin, kinstall, top } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();
const FAILING_DRACUT = path.join(top, 'test/fakes/dracut-failing-for-kver');

/**
 * A root with the real kernel staged under each version (--force: the image says V), its modules
 * indexed as a package's depmod leaves them. The shipped 50-dkms is masked: it is a preinst hook,
 * so with it every kernel's initramfs would wait for its turn.
 */
function stagedRoot(versions: string[], config: Record<string, unknown> = {}): TestRoot {
  const r = newRoot({ config: { targetHooks: 'host', ...config } });
  for (const version of versions) {
    const dir = r.at(`/lib/modules/${version}`);
    execFileSync('cp', ['-al', kernel.modules, dir]);
    execFileSync('depmod', ['-a', '-b', r.root, version]);
    copyFileSync(kernel.image, path.join(dir, 'vmlinuz'));
    copyFileSync(kernel.systemMap, path.join(dir, 'System.map'));
    copyFileSync(kernel.config, path.join(dir, 'config'));
  }
  mkdirSync(r.at('/etc/kinstall/hooks.d'), { recursive: true });
  writeFileSync(r.at('/etc/kinstall/hooks.d/50-dkms'), '');
  return r;
}

/** The fast dracut config makeRoot wrote, with another dracut command. */
function dracutConfig(r: TestRoot, command: string): Record<string, unknown> {
  const written = JSON.parse(readFileSync(r.at('/etc/kinstall/config.json'), 'utf8')) as { dracut: Record<string, unknown> };
  return { ...written, dracut: { ...written.dracut, command } };
}

/** An initramfs's listing without its times: type and mode, links, owner, size and name of each entry. */
function initramfsListing(file: string): string[] {
  const listing = execFileSync('lsinitrd', [file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return listing
    .split('\n')
    .filter((line) => /^[-dlcbps][rwxsStT-]{9} /.test(line))
    .map((line) => {
      const f = line.trim().split(/\s+/);
      return [...f.slice(0, 5), ...f.slice(8)].join(' ');
    })
    .sort();
}

const history = (r: TestRoot) =>
  readFileSync(r.at('/var/lib/kinstall/history.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { action: string; version: string; files: string[] });

const FOUR = ['6.1.0-jobs-a', '6.1.0-jobs-b', '6.1.0-jobs-c', '6.1.0-jobs-d'].map((v) => `${v}-${V}`);
const allArgs = (r: TestRoot) => ['--all', '--force', '--root', r.root, '--layout', 'compat', '--initramfs', 'dracut'];

describe('installkernel --all --jobs', () => {
  it('--jobs 2 installs four kernels as --jobs 1 does; a kernel whose depmod must run waits for its turn', async () => {
    const parallel = stagedRoot(FOUR);
    const sequential = stagedRoot(FOUR);
    // The third kernel's index is stale (a module newer than it): depmod runs before its initramfs.
    const stale = (r: TestRoot) => {
      const later = new Date(Date.now() + 60_000);
      utimesSync(r.at(`/lib/modules/${FOUR[2]}/kernel`), later, later);
    };
    stale(parallel);
    stale(sequential);
    const two = await installkernel([...allArgs(parallel), '--jobs', '2', '--verbose']);
    expect(two.exitCode, two.stderr).toBe(0);
    const one = await installkernel([...allArgs(sequential), '--jobs', '1']);
    expect(one.exitCode, one.stderr).toBe(0);

    for (const version of [FOUR[0], FOUR[1], FOUR[3]])
      expect(two.stderr).toContain(`kinstall: initramfs for ${version} generated ahead, in parallel with the other kernels`);
    expect(two.stderr).toMatch(
      new RegExp(`debug: ${FOUR[2]}: initramfs not made ahead, it comes in its turn: depmod runs before its initramfs`),
    );
    expect(two.stderr).toMatch(new RegExp(`run: depmod -a -b \\S+ ${FOUR[2]}`));
    expect(one.stderr).not.toContain('generated ahead');

    // The same tree: every file but the initramfs byte for byte, the initramfs the same entries.
    const boot = (r: TestRoot) =>
      Object.fromEntries(Object.entries(snapshotTree(r.boot)).filter(([name]) => !name.startsWith('initramfs-')));
    expect(boot(parallel)).toEqual(boot(sequential));
    expect(readdirSync(parallel.boot).sort()).toEqual(readdirSync(sequential.boot).sort());
    for (const version of FOUR) {
      const image = `/boot/initramfs-${version}.img`;
      const listing = initramfsListing(parallel.at(image));
      expect(listing.some((entry) => entry.endsWith(`lib/modules/${version}/modules.dep`))).toBe(true);
      expect(listing).toEqual(initramfsListing(sequential.at(image)));
    }
    // One transaction story per kernel, in version order, and no journal left.
    for (const r of [parallel, sequential]) {
      expect(history(r).map((e) => `${e.action} ${e.version}`)).toEqual(FOUR.map((v) => `install ${v}`));
      expect(existsSync(r.at('/var/lib/kinstall/journal.json'))).toBe(false);
    }
  }, 300_000);

  it('a failed generation fails only its kernel: EPARTIAL (exit 9), the others installed, its files untouched', async () => {
    const three = FOUR.slice(0, 3);
    const r = stagedRoot(three);
    writeFileSync(r.at('/etc/kinstall/config.json'), JSON.stringify(dracutConfig(r, FAILING_DRACUT)));
    const bootBefore = snapshotTree(r.boot);
    const failedBefore = snapshotTree(r.at(`/lib/modules/${three[1]}`));
    const log = r.at('/var/fake/dracut-fail.log');
    mkdirSync(path.dirname(log), { recursive: true });
    const result = await installkernel([...allArgs(r), '--jobs', '2'], {
      env: { DRACUT_FAIL_KVER: three[1] ?? '', DRACUT_FAIL_LOG: log },
    });
    expect(result.exitCode, result.stderr).toBe(9);
    expect(result.stderr).toMatch(/^kinstall: ETOOL: .*dracut/m);
    expect(result.stderr).toMatch(new RegExp(`^kinstall: EPARTIAL: 1 of 3 kernels failed .*\\(${three[1]}\\)`, 'm'));
    expect(readFileSync(log, 'utf8')).toContain(`--kver ${three[1]}`);
    for (const version of [three[0], three[2]]) {
      expect(existsSync(r.at(`/boot/vmlinuz-${version}`))).toBe(true);
      expect(readFileSync(r.at(`/boot/initramfs-${version}.img`)).length).toBeGreaterThan(1_000_000);
    }
    expect(Object.keys(snapshotTree(r.boot)).filter((name) => name.includes(three[1] ?? '?'))).toEqual([]);
    expect(Object.keys(bootBefore)).toEqual([]);
    expect(snapshotTree(r.at(`/lib/modules/${three[1]}`))).toEqual(failedBefore);
    expect(history(r).map((e) => e.version)).toEqual([three[0], three[2]]);
    expect(existsSync(r.at('/var/lib/kinstall/journal.json'))).toBe(false);
  }, 300_000);

  it('SIGINT while initramfs generations run ahead: they are stopped, nothing is installed, no journal left', async () => {
    const r = stagedRoot(FOUR.slice(0, 3));
    const run = execa('node', [installkernelBin, ...allArgs(r), '--jobs', '2'], { reject: false, stdin: 'ignore' });
    let stderr = '';
    await new Promise<void>((resolve) => {
      run.stderr?.on('data', (chunk: Buffer) => {
        stderr += String(chunk);
        if (/generating the initramfs with dracut/.test(stderr)) resolve();
      });
    });
    run.kill('SIGINT');
    const result = await run;
    expect(result.exitCode, String(result.stderr)).toBe(9);
    expect(String(result.stderr)).toMatch(/^kinstall: EINTERRUPTED: interrupted by SIGINT/m);
    expect(String(result.stderr)).toMatch(/^kinstall: EPARTIAL: 3 of 3 kernels failed/m);
    expect(readdirSync(r.boot)).toEqual([]);
    expect(existsSync(r.at('/var/lib/kinstall/journal.json'))).toBe(false);
    // No dracut of this run outlives it (each ran in its own process group, stopped by exec).
    const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(r.root) && !line.startsWith('ps '));
    expect(left).toEqual([]);
  }, 120_000);

  it('--jobs takes a whole number from 1, only with installkernel --all (EUSAGE, exit 2, nothing changed)', async () => {
    const r = stagedRoot([FOUR[0] ?? '']);
    const before = snapshotTree(r.root);
    const refused = [
      ['--all', '--jobs', '0'],
      ['--all', '--jobs', 'two'],
      ['--all', '--jobs', '1.5'],
      ['--all', '--jobs=-1'],
      ['--all', '--jobs', '10000'],
      [FOUR[0] ?? '', kernel.image, '--jobs', '2'],
    ];
    for (const args of refused) {
      const result = await installkernel([...args, '--root', r.root, '--force', '--initramfs', 'none']);
      expect(result.exitCode, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(/^kinstall: EUSAGE: .*--jobs/m);
    }
    const add = await kinstall(['add', FOUR[0] ?? '', '--jobs', '2', '--root', r.root]);
    expect(add.exitCode, add.stderr).toBe(2);
    expect(add.stderr).toMatch(/^kinstall: EUSAGE: --jobs is not an option of kinstall add/m);
    expect(snapshotTree(r.root)).toEqual(before);
    const help = await installkernel(['--help']);
    expect(help.stdout).toMatch(/-j, --jobs N +with --all: up to N initramfs generations at once/);
  }, 120_000);
});
