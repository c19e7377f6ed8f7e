// remove and prune under a temporary --root: a preflight before any change (the boot dir, ESP and
// /lib/modules must not lead out of the root; the bootloader tool must exist), prune as one
// transaction with an honest message, EPRUNE after add, EROLLBACK without "nothing was changed",
// a corrupt, foreign or untrusted journal refused (EJOURNAL / EINSECURE), and installkernel --all's
// own exit code for a partial success.
import {
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isKinstallError } from '../../src/core/errors.js';
import { pruneAfterInstall } from '../../src/core/commands/add.js';
import { installkernel, kinstall, top } from '../helpers/cli.js';
import { testContext } from '../helpers/context.js';
import { testKernel } from '../helpers/kernel.js';
import { assertScratch, useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const LILO = path.join(top, 'test/fakes/lilo');
const LILO_CONF = `boot=/dev/vda\nmap=/boot/map\nimage=/boot/vmlinuz\n    label=linux\n    read-only\nimage=/boot/vmlinuz.old\n    label=linux.old\n    optional\n    read-only\n`;
const MACHINE_ID = '0123456789abcdef0123456789abcdef';

const scratchRoot = useScratchRoots();
const outside: string[] = [];
afterEach(() => {
  for (const dir of outside.splice(0)) {
    assertScratch(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});

function newRoot(config: Record<string, unknown> = {}): TestRoot {
  const r = scratchRoot({ config });
  mkdirSync(r.at('/var/fake'), { recursive: true });
  return r;
}

async function ok(args: string[], env?: Record<string, string>): Promise<void> {
  const result = await kinstall(args, { env });
  expect(result.exitCode, result.stderr).toBe(0);
}

const addCompat = (r: TestRoot, version: string) =>
  ok(['add', '--force', '--root', r.root, '--layout', 'compat', '--initramfs', 'none', version, kernel.image]);

/** Moves a directory of the root out of it (under the temp dir) and leaves a symlink in its place. */
function moveOut(r: TestRoot, systemPath: string): string {
  const away = `${r.root}-outside-${path.basename(systemPath)}`;
  outside.push(away);
  renameSync(r.at(systemPath), away);
  symlinkSync(away, r.at(systemPath));
  return away;
}

describe('remove: preflight before any change', () => {
  it('a boot dir leading out of the root is refused (exit 4), even with --keep-modules; the place it leads to is untouched', async () => {
    const r = newRoot();
    await addCompat(r, V);
    const away = moveOut(r, '/boot');
    const before = snapshotTree(away);
    const result = await kinstall(['remove', '--root', r.root, '--layout', 'compat', '--keep-modules', V]);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toMatch(
      new RegExp(`^kinstall: EPREFLIGHT: 1 preflight check\\(s\\) failed: boot dir ${r.boot} leads to ${away}, outside`, 'm'),
    );
    expect(snapshotTree(away)).toEqual(before);
    expect(before[`vmlinuz-${V}`]).toBeDefined();
  });

  it('an ESP (bls) leading out of the root is refused; the entries and kernels there stay', async () => {
    const r = newRoot();
    mkdirSync(r.at('/efi/loader/entries'), { recursive: true });
    writeFileSync(r.at('/etc/machine-id'), `${MACHINE_ID}\n`);
    mkdirSync(r.at('/etc/kernel'), { recursive: true });
    writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda1 ro\n');
    await ok(['add', '--root', r.root, '--layout', 'bls', '--initramfs', 'none', V, kernel.image]);
    const away = moveOut(r, '/efi');
    const before = snapshotTree(away);
    expect(before[`loader/entries/${MACHINE_ID}-${V}.conf`]).toBeDefined();
    const result = await kinstall(['remove', '--root', r.root, '--layout', 'bls', V]);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toMatch(
      /^kinstall: EPREFLIGHT: \d+ preflight check\(s\) failed: each is listed below\n {2}\S+ would land in .*outside/m,
    );
    expect(snapshotTree(away)).toEqual(before);
  });

  it('a /lib/modules leading out of the root is refused; the modules there stay', async () => {
    const r = newRoot();
    await addCompat(r, V);
    const bootBefore = snapshotTree(r.boot);
    const away = moveOut(r, '/lib/modules');
    const before = snapshotTree(away);
    expect(before[`${V}/vmlinuz`]).toBeDefined();
    const result = await kinstall(['remove', '--root', r.root, '--layout', 'compat', V]);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toMatch(/^kinstall: EPREFLIGHT: .*modules dir .* leads to .*, outside/m);
    expect(snapshotTree(away)).toEqual(before);
    expect(snapshotTree(r.boot)).toEqual(bootBefore);
  });

  it('a missing bootloader tool (lilo.command=/nonexistent) is refused before the commit: exit 4, nothing changed', async () => {
    const r = newRoot({ lilo: { command: LILO } });
    writeFileSync(r.at('/etc/lilo.conf'), LILO_CONF);
    const env = { LILO_FAKE_LOG: r.at('/var/fake/lilo.log') };
    await ok(['add', '--force', '--root', r.root, '--initramfs', 'none', V, kernel.image], env);
    await ok(['add', '--force', '--root', r.root, '--initramfs', 'none', `${V}-second`, kernel.image], env);
    const config = JSON.parse(readFileSync(r.at('/etc/kinstall/config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(r.at('/etc/kinstall/config.json'), JSON.stringify({ ...config, lilo: { command: '/nonexistent' } }));
    const before = snapshotTree(r.root);
    const result = await kinstall(['remove', '--root', r.root, V], { env });
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toMatch(/^kinstall: EPREFLIGHT: 1 preflight check\(s\) failed: \/nonexistent is not installed/m);
    expect(result.stderr).not.toContain('EROLLBACK');
    expect(snapshotTree(r.root)).toEqual(before);
  });
});

/** A lilo root (fake lilo) with the given versions installed, oldest first. */
async function liloRootWith(versions: string[]): Promise<{ r: TestRoot; env: Record<string, string>; liloRuns: () => number }> {
  const r = newRoot({ lilo: { command: LILO } });
  writeFileSync(r.at('/etc/lilo.conf'), LILO_CONF);
  const env = { LILO_FAKE_LOG: r.at('/var/fake/lilo.log') };
  for (const version of versions)
    await ok(['add', '--force', '--root', r.root, '--initramfs', 'none', version, kernel.image], env);
  const liloRuns = () => readFileSync(env.LILO_FAKE_LOG, 'utf8').trim().split('\n').length;
  return { r, env, liloRuns };
}

const state = (r: TestRoot) => ({ boot: snapshotTree(r.boot), modules: snapshotTree(r.at('/lib/modules')) });
const three = ['5.10.1-prune', '5.10.2-prune', '5.10.3-prune'];

describe('EROLLBACK never claims nothing was changed', () => {
  it('lilo failing on the removal and again on the rollback: exit 6, the cause without its outcome', async () => {
    const { r, env } = await liloRootWith([V, `${V}-second`]);
    const result = await kinstall(['remove', '--root', r.root, `${V}-second`], { env: { ...env, LILO_FAKE_FAIL: 'always' } });
    expect(result.exitCode, result.stderr).toBe(6);
    expect(result.stderr).toMatch(
      /^kinstall: EROLLBACK: rollback failed after \S*lilo failed \(exit code 1\): .*; the boot dir may need repair by hand$/m,
    );
    expect(result.stderr).not.toContain('nothing was changed');
  });
});

describe('prune: one transaction for every kernel it removes', () => {
  it('the second kernel failing (its lilo run) restores the first too; the message says no kernel was removed', async () => {
    const { r, env, liloRuns } = await liloRootWith(three);
    const before = state(r);
    // Deactivating the first removal runs lilo -t and lilo; the second's lilo -t fails.
    const failing = String(liloRuns() + 3);
    const result = await kinstall(['prune', '--keep', '1', '--root', r.root], { env: { ...env, LILO_FAKE_FAIL: failing } });
    expect(result.exitCode, result.stderr).toBe(5);
    expect(result.stderr).toMatch(
      /^kinstall: ETOOL: \S*lilo failed \(exit code 1\); rolled back \d+ change\(s\), nothing was changed$/m,
    );
    expect(result.stderr).toContain(`no kernel was removed: ${three[0]}, ${three[1]} are all still installed`);
    expect(state(r)).toEqual(before);
    expect(readdirSync(r.at('/lib/modules')).sort()).toEqual(three);
  });

  it('succeeding: both old kernels and their modules go, the links point at what is left, lilo is happy', async () => {
    const { r, env } = await liloRootWith(three);
    const result = await kinstall(['prune', '--keep', '1', '--root', r.root], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe(`removed ${three[0]}\nremoved ${three[1]}\nkept ${three[2]}`);
    expect(
      readdirSync(r.boot)
        .filter((n) => n.startsWith('vmlinuz'))
        .sort(),
    ).toEqual(['vmlinuz', `vmlinuz-${three[2]}`]);
    expect(readlinkSync(r.at('/boot/vmlinuz'))).toBe(`vmlinuz-${three[2]}`);
    expect(readdirSync(r.at('/lib/modules'))).toEqual([three[2]]);
    expect(readFileSync(r.at('/boot/map'), 'utf8')).toContain(`image /boot/vmlinuz -> /boot/vmlinuz-${three[2]} `);
  });

  it('after add --keep: a failed prune is EPRUNE (exit 7), the old kernels as before', async () => {
    const { r, env, liloRuns } = await liloRootWith(three);
    const before = state(r);
    const ctx = await testContext(r.root, { keep: 1 }, { ...env, LILO_FAKE_FAIL: String(liloRuns() + 3) });
    const error = await pruneAfterInstall(ctx, three[2] ?? '').then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!isKinstallError(error)) throw new Error(`expected EPRUNE, got ${String(error)}`);
    expect(error.code).toBe('EPRUNE');
    expect(error.exitCode).toBe(7);
    expect(error.message).toMatch(
      /^kernel installed, but pruning old kernels failed: ETOOL: \S*lilo failed \(exit code 1\); the old kernels are as before$/,
    );
    expect(state(r)).toEqual(before);
  });
});

describe('add --keep with a prune that fails', () => {
  it('exit 7 (EPRUNE): the new kernel is installed, the old ones are all still there', async () => {
    const { r, env, liloRuns } = await liloRootWith(three.slice(0, 2));
    // The install runs lilo -t and lilo; the prune's first lilo -t fails.
    const failing = String(liloRuns() + 3);
    const result = await kinstall(
      ['add', '--force', '--keep', '1', '--root', r.root, '--initramfs', 'none', three[2] ?? '', kernel.image],
      { env: { ...env, LILO_FAKE_FAIL: failing } },
    );
    expect(result.exitCode, result.stderr).toBe(7);
    expect(result.stderr).toMatch(
      /^kinstall: EPRUNE: kernel installed, but pruning old kernels failed: .*; the old kernels are as before$/m,
    );
    expect(readlinkSync(r.at('/boot/vmlinuz'))).toBe(`vmlinuz-${three[2]}`);
    expect(
      readdirSync(r.boot)
        .filter((n) => /^vmlinuz-/.test(n))
        .sort(),
    ).toEqual(three.map((v) => `vmlinuz-${v}`));
    expect(readdirSync(r.at('/lib/modules')).sort()).toEqual(three);
  });
});

describe('a journal recovery cannot use', () => {
  const journalOf = (r: TestRoot) => r.at('/var/lib/kinstall/journal.json');
  function withJournal(r: TestRoot, text: string): string {
    mkdirSync(path.dirname(journalOf(r)), { recursive: true });
    writeFileSync(journalOf(r), text, { mode: 0o600 });
    return journalOf(r);
  }

  it('a truncated journal: every command says EJOURNAL (exit 6) naming it, and keeps it', async () => {
    const r = newRoot();
    await addCompat(r, V);
    const file = withJournal(r, '{"format":1,"entr');
    const before = snapshotTree(r.root);
    for (const args of [
      ['list'],
      ['recover'],
      ['remove', '--layout', 'compat', V],
      ['add', '--force', '--layout', 'compat', '--initramfs', 'none', V, kernel.image],
    ]) {
      const result = await kinstall([...args.slice(0, 1), '--root', r.root, ...args.slice(1)]);
      expect(result.exitCode, `${args[0]}: ${result.stderr}`).toBe(6);
      expect(result.stderr).toMatch(
        new RegExp(
          `^kinstall: EJOURNAL: cannot use the journal of an interrupted run, ${file}: it is not valid JSON .*; inspect it, and move it aside once the boot dir is checked$`,
          'm',
        ),
      );
    }
    expect(snapshotTree(r.root)).toEqual(before);
  });

  it('an entry naming a file outside the root: refused, the outside file and the journal stay', async () => {
    const r = newRoot();
    const victim = `${r.root}-hostname-x`;
    outside.push(victim);
    writeFileSync(victim, 'host\n');
    const rel = path.relative(r.root, victim);
    withJournal(
      r,
      JSON.stringify({
        format: 2,
        id: 'abcd1234',
        pid: 1,
        started: '',
        phase: 'committing',
        emptiedDirs: [],
        reactivate: [],
        entries: [{ kind: 'write', path: rel, prior: 'absent' }],
      }),
    );
    const result = await kinstall(['recover', '--root', r.root]);
    expect(result.exitCode).toBe(6);
    expect(result.stderr).toMatch(
      new RegExp(
        `^kinstall: EJOURNAL: .*: it names ${rel.replace(/\./g, '\\.')} \\(entry 1\\), which leads outside the root ${r.root};`,
        'm',
      ),
    );
    expect(readFileSync(victim, 'utf8')).toBe('host\n');
    expect(existsSync(journalOf(r))).toBe(true);
  });

  it('a journal not owned by root is refused (EINSECURE) before recovery touches anything', async () => {
    const r = newRoot();
    await addCompat(r, V);
    writeFileSync(r.at(`/boot/vmlinuz-${V}-x`), 'would be deleted\n');
    const file = withJournal(
      r,
      JSON.stringify({
        format: 2,
        id: 'abcd1234',
        pid: 1,
        started: '',
        phase: 'committing',
        emptiedDirs: [],
        reactivate: [],
        entries: [{ kind: 'write', path: `boot/vmlinuz-${V}-x`, prior: 'absent' }],
      }),
    );
    chownSync(file, 1000, 1000);
    const result = await kinstall(['recover', '--root', r.root]);
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(
      new RegExp(`^kinstall: EINSECURE: refusing to use the journal of an interrupted run: ${file} is owned by uid 1000`, 'm'),
    );
    expect(existsSync(r.at(`/boot/vmlinuz-${V}-x`))).toBe(true);
  });

  it('a root moved since the crash is recovered in place (the journal names paths relative to it)', async () => {
    const r = newRoot();
    await addCompat(r, V);
    const before = snapshotTree(r.boot);
    const crashed = await import('execa').then(({ execa }) =>
      execa(
        'node',
        [
          path.join(top, 'dist/src/cli/kinstall.js'),
          'add',
          '--force',
          '--root',
          r.root,
          '--layout',
          'compat',
          '--initramfs',
          'none',
          `${V}-new`,
          kernel.image,
        ],
        { reject: false, stdin: 'ignore', env: { KINSTALL_TEST_CRASH_AFTER: 'op:2' } },
      ),
    );
    expect(crashed.signal).toBe('SIGKILL');
    const moved = `${r.root}-moved`;
    outside.push(moved);
    cpSync(r.root, moved, { recursive: true, verbatimSymlinks: true });
    rmSync(r.root, { recursive: true, force: true });
    const result = await kinstall(['recover', '--root', moved]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain('rolled back');
    expect(result.stdout).toContain(`restored ${moved}/boot/vmlinuz-${V}-new`);
    expect(snapshotTree(path.join(moved, 'boot'))).toEqual(before);
    mkdirSync(r.root);
  });
});

describe('installkernel --all with one failing kernel', () => {
  it('exits 9 (partial), not 5: the others were installed', async () => {
    const r = newRoot();
    mkdirSync(r.at('/lib/modules/6.0.0-broken'), { recursive: true });
    writeFileSync(r.at('/lib/modules/6.0.0-broken/vmlinuz'), 'not a kernel at all\n'.repeat(100));
    mkdirSync(r.at(`/lib/modules/${V}`), { recursive: true });
    cpSync(kernel.image, r.at(`/lib/modules/${V}/vmlinuz`));
    const result = await installkernel(['--all', '--root', r.root, '--layout', 'compat', '--initramfs', 'none']);
    expect(result.exitCode, result.stderr).toBe(9);
    expect(result.stderr).toMatch(
      /^kinstall: EPARTIAL: 1 of 2 kernels failed to install and were rolled back \(6\.0\.0-broken\); the others are installed$/m,
    );
    expect(existsSync(r.at(`/boot/vmlinuz-${V}`))).toBe(true);
  });
});
