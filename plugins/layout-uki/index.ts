// The uki layout: one Unified Kernel Image (kernel, initramfs, command line in one PE file) at
// ESP/EFI/Linux/TOKEN-KVER.efi, where systemd-boot finds it without an entry file.
import path from 'node:path';
import { emptyPlan, totalSize, quickFs } from '../../src/core/plugin-api.js';
import type { Context, InstalledKernel, Layout, Plan, StagedKernel } from '../../src/core/plugin-api.js';
import { planCountedFile, versionFiles, versionOfFile } from '../shared/bls-naming.js';
import { markBootDefault } from '../shared/boot-default.js';
import { countedTrial } from '../shared/boot-counting.js';
import { bootTargetProblems, cmdlineProblems, findBootTarget, requireBootTarget } from '../shared/boot-target.js';
import type { BootTarget } from '../shared/boot-target.js';
import { assembleProblems, assembleUki } from './assemble.js';
import { buildUki, dracutBuildsInitramfs, dracutProblems, prebuiltUki, ukiProblems, ukiSchema } from './build.js';

const MODE = 0o644;
const EXT = '.efi';
const linuxDir = (target: BootTarget) => path.join(target.boot.dir, 'EFI', 'Linux');

const versionImages = (target: BootTarget, version: string) => versionFiles(linuxDir(target), target.token, version, EXT);

async function preflight(ctx: Context, kernel: StagedKernel): Promise<string[]> {
  const problems = await bootTargetProblems(ctx);
  if (await prebuiltUki(kernel)) return problems;
  const builder = dracutBuildsInitramfs(kernel) ? await dracutProblems(ctx, kernel) : await assembleProblems(ctx);
  return [...problems, ...(await cmdlineProblems(ctx, 'to embed in the UKI')), ...(await ukiProblems(ctx, kernel)), ...builder];
}

/** The UKI in the staging area: dracut makes its initramfs, or objcopy puts it around the given one. */
async function makeUki(ctx: Context, kernel: StagedKernel): Promise<string> {
  if (dracutBuildsInitramfs(kernel) || !kernel.initrd) return buildUki(ctx, kernel);
  return assembleUki(ctx, kernel, kernel.initrd);
}

async function plan(ctx: Context, kernel: StagedKernel): Promise<Plan> {
  const target = await requireBootTarget(ctx);
  const source = (await prebuiltUki(kernel)) ?? (await makeUki(ctx, kernel));
  const image = await planCountedFile(ctx, linuxDir(target), target.token, kernel.version, EXT, kernel.trial);
  const result = emptyPlan();
  result.place.push({ from: source, to: image.file, mode: MODE, verifiedByFirmware: true });
  result.remove.push(...image.replaced);
  result.image = image.file;
  return result;
}

async function planRemove(ctx: Context, version: string): Promise<Plan> {
  const result = emptyPlan();
  const target = await findBootTarget(ctx);
  if (target) result.remove.push(...(await versionImages(target, version)));
  return result;
}

async function list(ctx: Context): Promise<InstalledKernel[]> {
  const target = await findBootTarget(ctx);
  if (!target) return [];
  const kernels: InstalledKernel[] = [];
  for (const name of (await quickFs.readdir(linuxDir(target)).catch(() => [] as string[])).sort()) {
    const version = versionOfFile(name, target.token, EXT);
    if (!version) continue;
    const file = path.join(linuxDir(target), name);
    // The initramfs is inside the image: there is no separate file to load.
    kernels.push({
      version,
      layout: 'uki',
      files: [file],
      image: file,
      initrds: [],
      entry: file,
      size: await totalSize([file]),
    });
  }
  await markBootDefault(target.boot.dir, kernels, (k) => path.basename(k.entry ?? ''));
  return kernels;
}

export const ukiLayout: Layout = {
  name: 'uki',
  optionSchema: ukiSchema,
  requiredKernelConfig: ['EFI', 'EFI_STUB'],
  async claimsImage(_ctx, image) {
    return image.format === 'uki' ? `${image.path} is a Unified Kernel Image` : undefined;
  },
  // For list and remove: in use when EFI/Linux holds this machine's UKIs.
  async inUse(ctx) {
    const target = await findBootTarget(ctx);
    if (!target) return undefined;
    const names = await quickFs.readdir(linuxDir(target)).catch(() => [] as string[]);
    return names.some((n) => versionOfFile(n, target.token, EXT))
      ? `${linuxDir(target)} holds UKIs of ${target.token}`
      : undefined;
  },
  preflight,
  // kinstall builds UKIs with dracut (or objcopy around a given initramfs); ukify is a hook's.
  ukiGenerators: ['dracut'],
  // The core then skips its own initramfs step: dracut --uefi puts one in the UKI.
  async buildsInitramfs(_ctx, kernel) {
    return !(await prebuiltUki(kernel)) && dracutBuildsInitramfs(kernel);
  },
  plan,
  planRemove,
  list,
  // Boot counting in the UKI's name, TOKEN-KVER+1.efi, as for bls entries.
  trial: countedTrial({ dir: linuxDir, ext: EXT, findTarget: findBootTarget, list }),
};
