// SIGKILL at named moments of add and remove (KINSTALL_TEST_CRASH_AFTER, a test-only hook point),
// then the next command's recovery: the boot dir must be byte-identical to before the run, or to
// the result of a successful run when the crash came after the run was final. Every op:N, backup:N,
// rollback:N and recover:N point is visited by crash-enumerated-*, crash-activation and
// crash-rollback-recover; here: tool leftovers, which commands recover, lilo, pipeline steps, modules.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
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

const scratchRoot = useScratchRoots();

function newRoot(layout: 'compat' | 'lilo'): TestRoot {
  const r = scratchRoot({ config: layout === 'lilo' ? { lilo: { command: LILO } } : {} });
  mkdirSync(r.at('/var/fake'), { recursive: true });
  if (layout === 'lilo') writeFileSync(r.at('/etc/lilo.conf'), LILO_CONF);
  for (const tag of ['a', 'b', 'c'])
    writeFileSync(r.at(`/var/fake/initrd-${tag}`), initramfsFixture(`prebuilt initramfs ${tag}\n`));
  return r;
}

const env = (r: TestRoot, extra: Record<string, string> = {}) => ({ LILO_FAKE_LOG: r.at('/var/fake/lilo.log'), ...extra });
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
const journal = (r: TestRoot) => r.at('/var/lib/kinstall/journal.json');
const liloRuns = (r: TestRoot) =>
  existsSync(r.at('/var/fake/lilo.log')) ? readFileSync(r.at('/var/fake/lilo.log'), 'utf8').trim().split('\n').length : 0;

/** Runs the built CLI with the crash point set and asserts it died by SIGKILL with its journal on disk. */
async function crashAt(r: TestRoot, point: string, args: string[]): Promise<void> {
  const result = await execa('node', [kinstallBin, ...args], {
    reject: false,
    stdin: 'ignore',
    env: env(r, { KINSTALL_TEST_CRASH_AFTER: point }),
  });
  expect(result.signal, `${point}: ${String(result.stderr)}`).toBe('SIGKILL');
  expect(existsSync(journal(r)), `${point}: journal left behind`).toBe(true);
}

async function ok(r: TestRoot, args: string[]): Promise<string> {
  const result = await kinstall(args, { env: env(r) });
  expect(result.exitCode, result.stderr).toBe(0);
  return result.stdout + result.stderr;
}

async function recover(r: TestRoot): Promise<string> {
  const out = await ok(r, ['recover', '--root', r.root]);
  expect(existsSync(journal(r))).toBe(false);
  return out;
}

/** Two roots set up alike: one for the crash, one for the reference successful run. */
async function pair(layout: 'compat' | 'lilo', setup: (r: TestRoot) => Promise<void>) {
  const crashed = newRoot(layout);
  const reference = newRoot(layout);
  await setup(crashed);
  await setup(reference);
  return { crashed, reference };
}

describe('kinstall recover', () => {
  it('says there is nothing to recover on a clean root and changes nothing', async () => {
    const r = newRoot('compat');
    await ok(r, addArgs(r, V, 'a'));
    const before = snapshotTree(r.boot);
    expect(await recover(r)).toContain('nothing to recover');
    expect(snapshotTree(r.boot)).toEqual(before);
  });
});

describe('SIGKILL during kinstall add (compat), then recovery', () => {
  it('what a bootloader tool killed mid-write leaves is swept by recovery; the boot dir is byte-identical to before', async () => {
    const r = newRoot('compat');
    await ok(r, addArgs(r, V, 'a'));
    const before = snapshotTree(r.boot);
    await crashAt(r, 'op:2', addArgs(r, V, 'b'));
    expect(snapshotTree(r.boot)).not.toEqual(before);
    // grub-mkconfig -o grub.cfg.kinstall-new, and its own .new of that.
    mkdirSync(r.at('/boot/grub'), { recursive: true });
    writeFileSync(r.at('/boot/grub/grub.cfg.kinstall-new'), 'half a grub.cfg');
    writeFileSync(r.at('/boot/grub/grub.cfg.kinstall-new.new'), 'half a grub.cfg');
    expect(await recover(r)).toContain('rolled back');
    rmdirSync(r.at('/boot/grub'));
    expect(snapshotTree(r.boot)).toEqual(before);
  });

  it('a fresh install killed half-way: the next plain kinstall add rolls it back with a warning, then installs', async () => {
    const { crashed, reference } = await pair('compat', async (r) => void (await ok(r, addArgs(r, V, 'a'))));
    await ok(reference, addArgs(reference, V2, 'c'));
    await crashAt(crashed, 'op:3', addArgs(crashed, V2, 'c'));
    expect(snapshotTree(crashed.boot)[`vmlinuz-${V2}`]).toBeDefined();
    const out = await ok(crashed, addArgs(crashed, V2, 'c'));
    expect(out).toMatch(/an unfinished kinstall run \(pid \d+, started .*\) was found: rolled back/);
    expect(existsSync(journal(crashed))).toBe(false);
    expect(snapshotTree(crashed.boot)).toEqual(snapshotTree(reference.boot));
  });

  it('list also recovers first', async () => {
    const r = newRoot('compat');
    await ok(r, addArgs(r, V, 'a'));
    const before = snapshotTree(r.boot);
    await crashAt(r, 'op:2', addArgs(r, V2, 'c'));
    const result = await kinstall(['list', '--root', r.root], { env: env(r) });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain('was found: rolled back');
    expect(result.stdout).toContain(V);
    expect(result.stdout).not.toContain(V2);
    expect(snapshotTree(r.boot)).toEqual(before);
  });
});

describe('verify recovers first too', () => {
  it('a fresh install killed half-way is rolled back before verify looks for it: not installed, exit 3', async () => {
    const r = newRoot('compat');
    const before = snapshotTree(r.boot);
    await crashAt(r, 'op:2', addArgs(r, V, 'a'));
    expect(existsSync(r.at(`/lib/modules/${V}/vmlinuz`)), 'the killed run staged the image').toBe(true);
    const result = await kinstall(['verify', '--root', r.root, '--layout', 'compat', V], { env: env(r) });
    expect(result.stderr).toContain('was found: rolled back');
    expect(result.exitCode, result.stderr).toBe(3);
    expect(result.stderr).toMatch(/^kinstall: ENOTINSTALLED: /m);
    expect(snapshotTree(r.boot)).toEqual(before);
    expect(existsSync(r.at(`/lib/modules/${V}/vmlinuz`))).toBe(false);
  });
});

describe('SIGKILL with the lilo layout: recovery runs lilo again on the restored files', () => {
  it('add killed just before lilo rewrites the map: files restored, lilo re-run, map as before', async () => {
    const r = newRoot('lilo');
    await ok(r, addArgs(r, V, 'a'));
    const before = snapshotTree(r.boot);
    const runs = liloRuns(r);
    await crashAt(r, 'reactivate', addArgs(r, V2, 'c'));
    const out = await recover(r);
    expect(out).toContain('ran the lilo bootloader step again');
    // lilo -t, then lilo -r ROOT: the map is rewritten from the restored files.
    expect(liloRuns(r)).toBe(runs + 2);
    expect(snapshotTree(r.boot)).toEqual(before);
  });

  it('add killed before any file changed lilo would see: no lilo run is needed', async () => {
    const r = newRoot('lilo');
    await ok(r, addArgs(r, V, 'a'));
    const before = snapshotTree(r.boot);
    const runs = liloRuns(r);
    await crashAt(r, 'op:4', addArgs(r, V2, 'c'));
    expect(await recover(r)).not.toContain('bootloader step');
    expect(liloRuns(r)).toBe(runs);
    expect(snapshotTree(r.boot)).toEqual(before);
  });

  it('remove killed as lilo is about to run: the removed kernel and its links come back', async () => {
    const r = newRoot('lilo');
    await ok(r, addArgs(r, V, 'a'));
    await ok(r, addArgs(r, V2, 'c'));
    const before = snapshotTree(r.boot);
    await crashAt(r, 'reactivate', ['remove', '--root', r.root, V2]);
    expect(snapshotTree(r.boot)[`vmlinuz-${V2}`]).toBeUndefined();
    await recover(r);
    expect(snapshotTree(r.boot)).toEqual(before);
  });
});

describe('SIGKILL as each pipeline step begins, then kinstall recover: boot dir and lib/modules/KVER as before', () => {
  /** A root with the kernel installed once (modules, depmod index, hooks that succeed). */
  async function installedRoot(): Promise<TestRoot> {
    const r = scratchRoot({ modules: true });
    mkdirSync(r.at('/var/fake'), { recursive: true });
    for (const tag of ['a', 'b']) writeFileSync(r.at(`/var/fake/initrd-${tag}`), initramfsFixture(`prebuilt initramfs ${tag}\n`));
    for (const phase of ['preinst', 'postinst']) {
      mkdirSync(r.at(`/etc/kernel/${phase}.d`), { recursive: true });
      writeFileSync(r.at(`/etc/kernel/${phase}.d/10-ok`), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    }
    await ok(r, ['add', '--root', r.root, '--layout', 'compat', '--initrd', r.at('/var/fake/initrd-a'), V, kernel.image]);
    return r;
  }
  const state = (r: TestRoot) => ({ boot: snapshotTree(r.boot), modules: snapshotTree(r.at(`/lib/modules/${V}`)) });

  for (const step of ['stage', 'depmod', 'initramfs', 'preinst', 'plan', 'commit', 'activate', 'postinst']) {
    it(`add killed at step:${step}`, async () => {
      const r = await installedRoot();
      const before = state(r);
      // --depmod always: the index is current, and depmod rewriting it is what recovery must undo here.
      const args = [
        'add',
        '--force',
        '--depmod',
        'always',
        '--root',
        r.root,
        '--layout',
        'compat',
        '--initrd',
        r.at('/var/fake/initrd-b'),
        V,
        kernel.image,
      ];
      const result = await execa('node', [kinstallBin, ...args], {
        reject: false,
        stdin: 'ignore',
        env: { KINSTALL_TEST_CRASH_AFTER: `step:${step}` },
      });
      expect(result.signal, String(result.stderr)).toBe('SIGKILL');
      // The journal is written with the first change: the staged files are unchanged (same image),
      // so that is depmod's, once its step runs.
      const changed = !['stage', 'depmod'].includes(step);
      expect(existsSync(journal(r))).toBe(changed);
      // What a depmod killed with kinstall leaves: its index half-written under a temp name.
      const depmodTemp = r.at(`/lib/modules/${V}/modules.dep.bin.4242.123456.1764000000`);
      if (step === 'initramfs') writeFileSync(depmodTemp, 'half an index');
      const said = await recover(r);
      expect(said).toContain(changed ? 'rolled back' : 'nothing to recover');
      if (step === 'initramfs') expect(said).toContain(`removed ${depmodTemp}`);
      expect(state(r)).toEqual(before);
    });
  }

  for (const step of ['commit', 'deactivate']) {
    it(`remove killed at step:${step}`, async () => {
      const r = await installedRoot();
      const before = state(r);
      const result = await execa('node', [kinstallBin, 'remove', '--root', r.root, '--layout', 'compat', V], {
        reject: false,
        stdin: 'ignore',
        env: { KINSTALL_TEST_CRASH_AFTER: `step:${step}` },
      });
      expect(result.signal, String(result.stderr)).toBe('SIGKILL');
      expect(await recover(r)).toContain(step === 'commit' ? 'nothing to recover' : 'rolled back');
      expect(state(r)).toEqual(before);
    });
  }
});

describe('SIGKILL during remove: the modules dir goes through the journal too', () => {
  /** A root with the kernel installed in compat, with its real modules and depmod index. */
  async function withModules(): Promise<TestRoot> {
    const r = scratchRoot({ modules: true });
    mkdirSync(r.at('/var/fake'), { recursive: true });
    writeFileSync(r.at('/var/fake/initrd-a'), initramfsFixture('prebuilt initramfs a\n'));
    await ok(r, ['add', '--root', r.root, '--layout', 'compat', '--initrd', r.at('/var/fake/initrd-a'), V, kernel.image]);
    return r;
  }
  const modules = (r: TestRoot) => r.at('/lib/modules');
  const removeArgs = (r: TestRoot) => ['remove', '--root', r.root, '--layout', 'compat', V];

  for (const point of ['step:deactivate', 'activated']) {
    it(`killed at ${point}, the tree already renamed aside: recovery renames it back, byte-identical`, async () => {
      const r = await withModules();
      const before = { boot: snapshotTree(r.boot), modules: snapshotTree(modules(r)) };
      await crashAt(r, point, removeArgs(r));
      expect(readdirSync(modules(r))).toEqual([
        expect.stringMatching(new RegExp(`^\\.${V.replace(/\./g, '\\.')}\\.kinstall-old-[0-9a-f]+-\\d+$`)),
      ]);
      expect(await recover(r)).toContain(`restored ${r.at(`/lib/modules/${V}`)}`);
      expect({ boot: snapshotTree(r.boot), modules: snapshotTree(modules(r)) }).toEqual(before);
    });
  }

  it('killed once the run was final: recovery deletes the renamed tree, as the finished remove would have', async () => {
    const crashed = await withModules();
    const reference = await withModules();
    await ok(reference, removeArgs(reference));
    await crashAt(crashed, 'committed', removeArgs(crashed));
    expect(existsSync(crashed.at(`/lib/modules/${V}`))).toBe(false);
    expect(await recover(crashed)).toContain('completed');
    expect(readdirSync(modules(crashed))).toEqual([]);
    expect(readdirSync(modules(reference))).toEqual([]);
    expect(snapshotTree(crashed.boot)).toEqual(snapshotTree(reference.boot));
  });
});
