// Preflight helpers on their own: the preview plan's targets (checked before anything is staged),
// removal plans staying inside their areas, and an ESP in fstab that is not mounted.
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compatLayout } from '../../plugins/layout-compat/index.js';
import { findBootRoot } from '../../src/core/system/boot-root.js';
import { inspectKernelImage } from '../../src/core/system/kernel-image.js';
import { checkBootRootMounted, checkPlanTargets, previewPlanTargets } from '../../src/core/pipeline/preflight.js';
import { emptyPlan, type Layout, type StagedKernel } from '../../src/core/types.js';
import { testContext } from '../helpers/context.js';
import { testKernel } from '../helpers/kernel.js';
import { assertScratch, useScratchRoots, type TestRoot } from '../helpers/root.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();
let root: TestRoot;
let elsewhere: string | undefined;
afterEach(() => {
  if (elsewhere) {
    assertScratch(elsewhere);
    rmSync(elsewhere, { recursive: true, force: true });
  }
  elsewhere = undefined;
});

/** The kernel as the preflight step sees it: nothing staged yet, the initramfs not yet made. */
async function unstaged(r: TestRoot): Promise<StagedKernel> {
  return {
    version: V,
    moduleDir: r.at(`/lib/modules/${V}`),
    image: r.at(`/lib/modules/${V}/vmlinuz`),
    imageInfo: await inspectKernelImage(kernel.image),
    initrd: r.at('/staging/initrd'),
    stagingArea: r.at('/staging'),
  };
}

describe('previewPlanTargets', () => {
  it('reports a directory where the layout will put the kernel, before the kernel is staged', async () => {
    root = newRoot({ config: false });
    const ctx = await testContext(root.root);
    expect(await previewPlanTargets(ctx, compatLayout, await unstaged(root))).toEqual([]);
    mkdirSync(root.at(`/boot/vmlinuz-${V}`));
    expect(await previewPlanTargets(ctx, compatLayout, await unstaged(root))).toEqual([
      `${root.at(`/boot/vmlinuz-${V}`)} is a directory, where the new file goes (move it away)`,
    ]);
  });

  it('plans as under --dry-run: a command the plan runs is not run; a plan that cannot be made yet is left to the plan step', async () => {
    root = newRoot({ config: false });
    const ctx = await testContext(root.root);
    const marker = root.at('/ran');
    const building: Layout = {
      ...compatLayout,
      name: 'builds-in-plan',
      async plan(c, k) {
        expect(c.request.dryRun).toBe(true);
        await c.exec.run('touch', [marker]);
        const plan = emptyPlan();
        plan.place.push({ from: k.image, to: root.at('/boot/out'), mode: 0o644 });
        return plan;
      },
    };
    mkdirSync(root.at('/boot/out'));
    expect(await previewPlanTargets(ctx, building, await unstaged(root))).toEqual([
      `${root.at('/boot/out')} is a directory, where the new file goes (move it away)`,
    ]);
    expect(existsSync(marker)).toBe(false);
    const failing: Layout = { ...compatLayout, name: 'not-yet', plan: () => Promise.reject(new Error('needs the staged image')) };
    expect(await previewPlanTargets(ctx, failing, await unstaged(root))).toEqual([]);
  });
});

describe('checkPlanTargets on a removal plan', () => {
  it('refuses a removal under a symlinked directory that leads outside the boot dir', async () => {
    root = newRoot({ config: false });
    elsewhere = mkdtempSync(path.join(os.tmpdir(), 'kinstall-outside-'));
    writeFileSync(path.join(elsewhere, 'linux'), 'not ours\n');
    symlinkSync(elsewhere, root.at('/boot/token'));
    const ctx = await testContext(root.root);
    const plan = emptyPlan();
    plan.remove.push(root.at('/boot/token/linux'));
    await expect(checkPlanTargets(plan, ctx)).rejects.toMatchObject({
      code: 'EPREFLIGHT',
      message: expect.stringMatching(/would land in .*kinstall-outside-.*, outside/) as unknown,
    });
    const inside = emptyPlan();
    inside.remove.push(root.at('/boot/vmlinuz-1'), root.at('/boot/token'));
    await expect(checkPlanTargets(inside, ctx)).resolves.toBeUndefined();
  });
});

describe('checkBootRootMounted', () => {
  it('reports an fstab ESP that is not mounted: the one given, or any candidate up to the boot root found', async () => {
    root = newRoot({ config: false });
    mkdirSync(root.at('/efi'));
    mkdirSync(root.at('/boot/loader'));
    writeFileSync(root.at('/etc/fstab'), '# ESP\nUUID=AB-CD /efi vfat umask=0077 0 2\n');
    const ctx = await testContext(root.root);
    const boot = await findBootRoot(ctx);
    expect(boot?.targetPath).toBe('/boot');
    const problem = `ESP ${root.at('/efi')} is listed in /etc/fstab but not mounted (run: mount /efi)`;
    expect(await checkBootRootMounted(ctx, boot)).toEqual([problem]);
    expect(await checkBootRootMounted(ctx, undefined)).toEqual([problem]);
    expect(await checkBootRootMounted(await testContext(root.root, { bootRoot: '/boot' }), boot)).toEqual([]);
    expect(await checkBootRootMounted(await testContext(root.root, { bootRoot: '/efi/' }), boot)).toEqual([problem]);
    writeFileSync(root.at('/etc/fstab'), 'UUID=AB-CD /efi vfat noauto 0 2\n');
    expect(await checkBootRootMounted(ctx, boot)).toEqual([]);
  });
});
