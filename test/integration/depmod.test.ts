// depmod only when the module index is stale: a current index is left alone (its files keep their
// inode and mtime), a module newer than it or --depmod always rebuilds it, and --verbose says which.
import { copyFileSync, renameSync, statSync } from 'node:fs';
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
