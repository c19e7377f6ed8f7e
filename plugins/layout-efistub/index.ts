// The efistub layout: the firmware starts the kernel itself. The image goes to
// ESP/EFI/<vendor>/vmlinuz-KVER.efi with initramfs-KVER.img (and early microcode, microcode-KVER.img)
// beside it, and one firmware boot entry (efibootmgr) names them. No auto-detection: an ESP alone
// does not say the firmware boots kernels directly.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  bootRootCandidates,
  emptyPlan,
  isPlainFile,
  readKernelCmdline,
  totalSize,
  type Context,
  type InstalledKernel,
  type Layout,
  type PlacedFile,
  type Plan,
  type StagedKernel,
  type WrittenFile,
  quickFs,
} from '../../src/core/plugin-api.js';
import { createFirmwareEntry, deleteFirmwareEntries, firmwareDisk, restoreFirmware, type FirmwareNote } from './entry.js';
import { Efibootmgr, sameLoader } from './firmware.js';
import {
  efibootmgrCommand,
  efistubOptions,
  efistubSchema,
  efistubTarget,
  espProblems,
  firmwareAvailable,
  loadedInitrds,
  validVendor,
  type EfistubTarget,
} from './target.js';
import { efistubTrial } from './trial.js';

const MODE = 0o644;

async function requireTarget(ctx: Context): Promise<EfistubTarget> {
  const target = await efistubTarget(ctx);
  // Preflight already refused this; plan and remove may run without it (remove has no preflight).
  if (!target) throw new Error(`no ESP found (tried ${espPlaces(ctx)})`);
  return target;
}

const espPlaces = (ctx: Context) =>
  ctx.settings.bootRoot
    ? `--esp/BOOT_ROOT ${ctx.settings.bootRoot}`
    : bootRootCandidates()
        .map((c) => ctx.paths.under(c))
        .join(', ');

async function preflight(ctx: Context, kernel: StagedKernel): Promise<string[]> {
  const problems: string[] = [];
  if (!kernel.imageInfo.efiStub) {
    problems.push(
      `${kernel.image} is not EFI-stub capable (a ${kernel.imageInfo.format} without a PE header): build the kernel with CONFIG_EFI_STUB=y, or use another layout`,
    );
  }
  const vendor = efistubOptions(ctx).vendor;
  if (vendor !== undefined && !validVendor(vendor))
    problems.push(`efistub.vendor "${vendor}" is not a plain directory name (letters, digits, . _ + -)`);
  if (!(await readKernelCmdline(ctx))) {
    problems.push(
      `no kernel command line for the firmware entry: create ${ctx.paths.under('/etc/kernel/cmdline')} (for example "root=UUID=... ro") or pass --cmdline`,
    );
  }
  const target = await efistubTarget(ctx);
  if (!target) {
    problems.push(`no ESP found (tried ${espPlaces(ctx)}): mount the ESP or pass --esp DIR`);
    return problems;
  }
  problems.push(...(await espProblems(ctx, target)));
  if ((await firmwareAvailable(ctx)).available) {
    const command = efibootmgrCommand(ctx);
    if (!(await ctx.exec.which(command))) problems.push(`${command} is not installed (needed to create the firmware boot entry)`);
    if (!(await firmwareDisk(ctx, target))) {
      problems.push(
        `cannot tell which disk and partition hold the ESP ${target.esp.dir}: set efistub.disk and efistub.part in the config file`,
      );
    }
  }
  return problems;
}

/**
 * The kernel's early microcode as one file beside it: a copy of the one image, or the images
 * concatenated in load order (what the EFI stub would do with one initrd= each), so the entry's
 * load options stay short and the file is named after the kernel alone, like its initramfs.
 */
async function planMicrocode(images: string[], to: string): Promise<{ place?: PlacedFile; write?: WrittenFile }> {
  if (images.length === 1 && images[0]) return { place: { from: images[0], to, mode: MODE } };
  return { write: { path: to, content: Buffer.concat(await Promise.all(images.map((f) => readFile(f)))), mode: MODE } };
}

async function plan(ctx: Context, kernel: StagedKernel): Promise<Plan> {
  const target = await requireTarget(ctx);
  const result = emptyPlan();
  const image = path.join(target.dir, target.imageName(kernel.version));
  const microcode = path.join(target.dir, target.microcodeName(kernel.version));
  const initrd = path.join(target.dir, target.initrdName(kernel.version));
  result.place.push({ from: kernel.image, to: image, mode: MODE, verifiedByFirmware: true });
  // Stale files of the same version go: an initramfs would not match the new kernel's modules, and
  // the new entry names only what this install has (loadedInitrds).
  const images = kernel.microcode ?? [];
  if (images.length > 0) {
    const planned = await planMicrocode(images, microcode);
    if (planned.place) result.place.push(planned.place);
    if (planned.write) result.write.push(planned.write);
  } else if (await isPlainFile(microcode)) result.remove.push(microcode);
  if (kernel.initrd) result.place.push({ from: kernel.initrd, to: initrd, mode: MODE });
  else if (await isPlainFile(initrd)) result.remove.push(initrd);
  result.image = image;
  const loader = target.efiPath(target.imageName(kernel.version));
  // Without EFI variables activation only prints the command: the plan must not promise the entry.
  const firmware = await firmwareAvailable(ctx);
  result.notes = [
    firmware.available
      ? `then create the firmware entry for ${loader} with ${efibootmgrCommand(ctx)}${kernel.trial ? ', keep BootOrder and set BootNext to it (a trial: it boots once, next)' : ''}`
      : `then print, not run, the ${efibootmgrCommand(ctx)} command that creates the firmware entry for ${loader} (EFI variables are not available)`,
  ];
  return result;
}

async function planRemove(ctx: Context, version: string): Promise<Plan> {
  const target = await efistubTarget(ctx);
  const result = emptyPlan();
  if (!target) return result;
  for (const name of [target.imageName(version), target.microcodeName(version), target.initrdName(version)]) {
    if (await isPlainFile(path.join(target.dir, name))) result.remove.push(path.join(target.dir, name));
  }
  return result;
}

async function list(ctx: Context): Promise<InstalledKernel[]> {
  const target = await efistubTarget(ctx);
  if (!target) return [];
  const names = await quickFs.readdir(target.dir).catch(() => [] as string[]);
  const kernels: InstalledKernel[] = [];
  for (const name of names) {
    const version = /^vmlinuz-(.+)\.efi$/.exec(name)?.[1];
    if (!version) continue;
    const image = path.join(target.dir, name);
    // In load order, as the entry names them: early microcode first.
    const initrds = [target.microcodeName(version), target.initrdName(version)]
      .filter((n) => names.includes(n))
      .map((n) => path.join(target.dir, n));
    const files = [image, ...initrds];
    kernels.push({
      version,
      layout: 'efistub',
      files,
      image,
      initrds,
      entry: target.efiPath(target.imageName(version)),
      size: await totalSize(files),
    });
  }
  await markDefault(ctx, kernels);
  return kernels;
}

/** The default is the kernel whose entry the firmware tries first (earliest in BootOrder). */
async function markDefault(ctx: Context, kernels: InstalledKernel[]): Promise<void> {
  if (kernels.length === 0 || !(await firmwareAvailable(ctx)).available) return;
  const state = await new Efibootmgr(ctx, efibootmgrCommand(ctx)).read().catch(() => undefined);
  if (!state) return;
  for (const num of state.order) {
    const loader = state.entries.find((e) => e.num === num)?.loader;
    const kernel = kernels.find((k) => loader !== undefined && sameLoader(loader, k.entry ?? ''));
    if (kernel) {
      kernel.isDefault = true;
      return;
    }
  }
}

export const efistubLayout: Layout = {
  name: 'efistub',
  optionSchema: efistubSchema,
  requiredKernelConfig: ['EFI', 'EFI_STUB'],
  preflight,
  plan,
  async activate(ctx, kernel, _plan, txn) {
    const target = await requireTarget(ctx);
    await createFirmwareEntry(ctx, target, kernel.version, loadedInitrds(target, kernel), txn, kernel.trial === true);
  },
  planRemove,
  async deactivate(ctx, version, _plan, txn) {
    const target = await efistubTarget(ctx);
    if (target) await deleteFirmwareEntries(ctx, target, version, txn);
  },
  // The note is the one createFirmwareEntry/deleteFirmwareEntries journaled: the firmware before the run.
  async recover(ctx, note) {
    if (note === undefined) throw new Error('the interrupted run journaled no firmware state to restore');
    await restoreFirmware(new Efibootmgr(ctx, efibootmgrCommand(ctx)), note as FirmwareNote);
  },
  list,
  trial: efistubTrial,
};
