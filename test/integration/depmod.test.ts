// depmod only when the module index is stale: a current index is left alone (its files keep their
// inode and mtime), a module newer than it or --depmod always rebuilds it, and --verbose says which.
import { copyFileSync, mkdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kinstall } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();

const add = (r: TestRoot, extra: string[] = []) =>
  kinstall(['add', '--verbose', '--root', r.root, '--layout', 'compat', '--initramfs', 'none', ...extra, V, kernel.image]);

/** modules.dep and modules.alias.bin as inode and mtime: depmod replaces both on every run. */
function indexIdentity(r: TestRoot): string[] {
  return ['modules.dep', 'modules.alias.bin'].map((name) => {
    const info = statSync(r.at(`/lib/modules/${V}/${name}`));
    return `${name} ${info.ino} ${info.mtimeMs}`;
  });
}

describe('depmod only when the index is stale', () => {
  it('builds a missing index, then leaves a current one alone', async () => {
    const root = newRoot({ modules: true });
    const first = await add(root);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stderr).toContain(`depmod: rebuilding the module index of ${V}: modules.dep is missing`);
    const built = indexIdentity(root);
    const second = await add(root);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stderr).toContain(`depmod: the module index of ${V} is current`);
    expect(second.stderr).not.toMatch(/run: depmod /);
    expect(indexIdentity(root)).toEqual(built);
  });

  it('a module newer than the index rebuilds it, naming the module', async () => {
    const root = newRoot({ modules: true });
    expect((await add(root)).exitCode).toBe(0);
    const built = indexIdentity(root);
    // A new file, not a touch: the modules are hard links to the cached kernel, which must not change.
    const module = root.at(`/lib/modules/${V}/kernel/net/key/af_key.ko`);
    copyFileSync(module, `${module}.new`);
    renameSync(`${module}.new`, module);
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`depmod: rebuilding the module index of ${V}: `);
    expect(result.stderr).toMatch(/run: depmod /);
    expect(indexIdentity(root)).not.toEqual(built);
  });

  it('--depmod always rebuilds a current index; --depmod with another word is a usage error', async () => {
    const root = newRoot({ modules: true });
    expect((await add(root)).exitCode).toBe(0);
    const built = indexIdentity(root);
    const forced = await add(root, ['--depmod', 'always']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(forced.stderr).toContain(`depmod: rebuilding the module index of ${V}: --depmod always`);
    expect(indexIdentity(root)).not.toEqual(built);
    const before = snapshotTree(root.root);
    const bad = await kinstall([
      'add',
      '--root',
      root.root,
      '--layout',
      'compat',
      '--initramfs',
      'none',
      '--depmod',
      'sometimes',
      V,
      kernel.image,
    ]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toBe('kinstall: EUSAGE: --depmod takes auto or always, found "sometimes"');
    expect(snapshotTree(root.root)).toEqual(before);
  });
});

// The same answers from find(1) and from the walk kinstall falls back to where find cannot run
// (here a find that fails before printing anything, first on PATH).
describe.each([
  { how: 'find', failingFind: false },
  { how: 'the walk (find fails)', failingFind: true },
])('what makes the index stale, seen by $how', ({ failingFind }) => {
  function options(r: TestRoot) {
    if (!failingFind) return undefined;
    const bin = r.at('/var/tmp/failing-find');
    mkdirSync(bin, { recursive: true });
    writeFileSync(path.join(bin, 'find'), '#!/bin/sh\necho "find: broken" >&2\nexit 1\n', { mode: 0o755 });
    return { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } };
  }
  const addWith = (r: TestRoot) =>
    kinstall(['add', '--verbose', '--root', r.root, '--layout', 'compat', '--initramfs', 'none', V, kernel.image], options(r));
  const reason = (stderr: string) =>
    /depmod: (the module index of \S+ is current|rebuilding the module index of \S+: .*)/.exec(stderr)?.[1];

  it('a module rewritten in place (its directory unchanged) is named; a new directory is; build/ is not looked at', async () => {
    const root = newRoot({ modules: true });
    const dir = root.at(`/lib/modules/${V}/kernel/net/key`);
    const module = path.join(dir, 'af_key.ko');
    // Its own inode first (the modules are hard links to the cached kernel, which must not change).
    copyFileSync(module, `${module}.new`);
    renameSync(`${module}.new`, module);
    expect((await addWith(root)).exitCode).toBe(0);
    expect(reason((await addWith(root)).stderr)).toBe(`the module index of ${V} is current`);

    const dirTime = statSync(dir).mtime;
    const later = new Date(Date.now() + 5000);
    writeFileSync(module, readFileSync(module));
    utimesSync(module, later, later);
    utimesSync(dir, dirTime, dirTime);
    let result = await addWith(root);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(reason(result.stderr)).toBe(`rebuilding the module index of ${V}: ${module} is newer than the index`);
    // Which of the two answered: find ran, and failed for the walk to answer.
    expect(result.stderr).toMatch(/run: find /);
    if (failingFind) expect(result.stderr).toContain('find: broken');
    else expect(result.stderr).not.toContain('find: broken');

    // Older than the rebuilt index again: only what follows is newer.
    const past = new Date(Date.now() - 3600_000);
    utimesSync(module, past, past);
    const updates = root.at(`/lib/modules/${V}/updates`);
    mkdirSync(updates);
    utimesSync(updates, later, later);
    result = await addWith(root);
    expect(reason(result.stderr)).toBe(`rebuilding the module index of ${V}: ${updates} changed after the index was built`);

    // A build tree's own modules and directories never make the index stale.
    utimesSync(updates, past, past);
    mkdirSync(root.at(`/lib/modules/${V}/build/drivers`), { recursive: true });
    writeFileSync(root.at(`/lib/modules/${V}/build/drivers/x.ko`), 'not a module\n');
    for (const p of ['build/drivers/x.ko', 'build/drivers', 'build']) utimesSync(root.at(`/lib/modules/${V}/${p}`), later, later);
    utimesSync(root.at(`/lib/modules/${V}`), past, past);
    result = await addWith(root);
    expect(reason(result.stderr)).toBe(`the module index of ${V} is current`);
  });
});
