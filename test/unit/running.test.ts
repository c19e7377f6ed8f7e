// The running kernel, which only counts on the host root: remove refuses it without --force, list
// marks it, prune keeps it, and it is what an install with no version means. Tests never touch the
// host root, so the context is one on a temp root with `isHostRoot` and `runningRelease` overridden;
// every path still points into the temp root and the layout is compat. (On the "host root", list and
// prune still ask every layout's inUse(), which reads /proc/self/mounts: read-only, and no mount of
// the host's names a directory these roots hold.)
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/core/context.js';
import { KinstallError } from '../../src/core/errors.js';
import { locateKernel } from '../../src/core/system/kernel-sources.js';
import { listKernels } from '../../src/core/commands/list.js';
import { removeKernel } from '../../src/core/commands/remove.js';
import { pruneKernels } from '../../src/core/commands/prune.js';
import { testContext } from '../helpers/context.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const RUNNING = '6.1.10-gentoo';
const OTHERS = ['6.1.2-gentoo', '6.6.1-gentoo'];
const newRoot = useScratchRoots();
let root: TestRoot;

/** Three kernels in compat (files as `kinstall add` leaves them) and their neutral locations. */
function rootWithKernels(): TestRoot {
  const r = newRoot({ config: { layout: 'compat' } });
  const image = readFileSync(kernel.image);
  for (const version of [RUNNING, ...OTHERS]) {
    mkdirSync(r.at(`/lib/modules/${version}/kernel`), { recursive: true });
    writeFileSync(r.at(`/lib/modules/${version}/vmlinuz`), image);
    writeFileSync(r.at(`/boot/vmlinuz-${version}`), image);
    writeFileSync(r.at(`/boot/System.map-${version}`), `System.map of ${version}\n`);
  }
  return r;
}

/** The same context, but saying "this is the host root, running RUNNING" (or not the host root). */
function asHost(ctx: Context, isHostRoot = true, force = false): Context {
  return { ...ctx, isHostRoot, runningRelease: RUNNING, request: { ...ctx.request, force } };
}

async function rejection(promise: Promise<unknown>): Promise<KinstallError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KinstallError);
  return error as KinstallError;
}

describe('the running kernel on the host root', () => {
  it('the context under a temp root is not the host root, and every path points into the temp root', async () => {
    root = rootWithKernels();
    const ctx = asHost(await testContext(root.root));
    expect((await testContext(root.root)).isHostRoot).toBe(false);
    for (const p of [ctx.paths.boot, ctx.paths.modulesBase, ctx.paths.historyLog, ctx.paths.under('/etc/kernel')]) {
      expect(p.startsWith(`${root.root}/`)).toBe(true);
    }
    expect(ctx.settings.layout).toBe('compat');
  });

  it('remove refuses the running kernel without --force: ERUNNING, exit 3, nothing changed', async () => {
    root = rootWithKernels();
    const ctx = asHost(await testContext(root.root));
    const before = snapshotTree(root.root);
    const error = await rejection(removeKernel(ctx, { version: RUNNING, keepModules: false }));
    expect(error.code).toBe('ERUNNING');
    expect(error.exitCode).toBe(3);
    expect(error.message).toBe(`refusing to remove ${RUNNING}: it is the running kernel (use --force)`);
    expect(snapshotTree(root.root)).toEqual(before);
  });

  it('remove takes another version on the host root, and the running one with --force', async () => {
    root = rootWithKernels();
    const ctx = asHost(await testContext(root.root));
    const other = await removeKernel(ctx, { version: OTHERS[0] ?? '', keepModules: false });
    expect(other.removed.sort()).toEqual([root.at(`/boot/System.map-${OTHERS[0]}`), root.at(`/boot/vmlinuz-${OTHERS[0]}`)]);

    const forced = await removeKernel(asHost(ctx, true, true), { version: RUNNING, keepModules: false });
    expect(forced.layout).toBe('compat');
    expect(readdirSync(root.boot).sort()).toEqual([`System.map-${OTHERS[1]}`, `vmlinuz-${OTHERS[1]}`]);
    expect(existsSync(root.at(`/lib/modules/${RUNNING}`))).toBe(false);
  });

  it('under another root the running release is no reason to refuse: remove goes ahead', async () => {
    root = rootWithKernels();
    const ctx = asHost(await testContext(root.root), false);
    await removeKernel(ctx, { version: RUNNING, keepModules: false });
    expect(readdirSync(root.boot).filter((n) => n.includes(RUNNING))).toEqual([]);
  });

  it('list marks the running kernel, and only on the host root', async () => {
    root = rootWithKernels();
    const ctx = await testContext(root.root);
    const running = (listed: Awaited<ReturnType<typeof listKernels>>) => listed.map((k) => [k.version, k.running]);
    expect(running(await listKernels(asHost(ctx)))).toEqual([
      ['6.6.1-gentoo', false],
      [RUNNING, true],
      ['6.1.2-gentoo', false],
    ]);
    expect(running(await listKernels(asHost(ctx, false)))).toEqual([
      ['6.6.1-gentoo', false],
      [RUNNING, false],
      ['6.1.2-gentoo', false],
    ]);
  });

  it('prune --keep 1 keeps the running kernel as well as the newest, on the host root only', async () => {
    root = rootWithKernels();
    const ctx = asHost(await testContext(root.root));
    const result = await pruneKernels(ctx, { keep: 1, protect: [] });
    expect(result.removed.map((r) => r.version)).toEqual(['6.1.2-gentoo']);
    expect(result.kept).toEqual([RUNNING, '6.6.1-gentoo']);
    expect(
      readdirSync(root.boot)
        .filter((n) => n.startsWith('vmlinuz-'))
        .sort(),
    ).toEqual([`vmlinuz-${RUNNING}`, 'vmlinuz-6.6.1-gentoo']);

    const elsewhere = await pruneKernels(asHost(ctx, false), { keep: 1, protect: [] });
    expect(elsewhere.removed.map((r) => r.version)).toEqual([RUNNING]);
  });

  it('an install with no version means the running kernel on the host root, the newest staged one elsewhere', async () => {
    root = rootWithKernels();
    const ctx = await testContext(root.root);
    // --force: the staged images are the real kernel under other release names.
    expect((await locateKernel(asHost(ctx, true, true), {})).version).toBe(RUNNING);
    expect((await locateKernel(asHost(ctx, true, true), {})).image).toBe(root.at(`/lib/modules/${RUNNING}/vmlinuz`));
    expect((await locateKernel(asHost(ctx, false, true), {})).version).toBe('6.6.1-gentoo');
  });
});
