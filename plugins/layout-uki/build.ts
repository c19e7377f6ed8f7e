// Where the uki layout's image comes from: the installed image when it already is a UKI, a prebuilt
// uki.efi (from a preinst hook in the staging area, or beside the staged image), one assembled with
// objcopy around an initramfs made elsewhere (--initrd), else one built by dracut --uefi.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  isFile,
  pluginOptions,
  readKernelCmdline,
  type Context,
  type OptionSchema,
  type StagedKernel,
} from '../../src/core/plugin-api.js';
import { dracutArguments, dracutCommand } from '../shared/dracut.js';

/** Where dracut 059 (dracut.sh) puts the kernel; the UKI stub's own sections end below 0x20000. */
export const LINUX_VMA = 0x2000000;

export const hex = (n: number) => `0x${n.toString(16)}`;
const BUILT_NAME = 'kinstall-uki.efi';

/** dracut puts .initrd 16 MiB above .linux, 32 MiB on arm64, whose uncompressed kernels are larger. */
export const initrdVma = (kernel: StagedKernel) => (kernel.imageInfo.arch === 'arm64' ? 0x4000000 : 0x3000000);

/** `stub`: the systemd EFI stub to build UKIs with, instead of the one systemd-boot-efi installs. */
export const ukiSchema = { stub: 'string' } as const satisfies OptionSchema;

export const ukiOptions = (ctx: Context) => pluginOptions(ctx, 'uki', ukiSchema);

const STUB_ARCH: Record<string, string> = { x86_64: 'x64', x86: 'ia32', arm64: 'aa64' };

/** The systemd EFI stub on the host, where dracut or objcopy runs. */
export function stubPath(ctx: Context, kernel: StagedKernel): string {
  const configured = ukiOptions(ctx).stub;
  if (configured) return configured;
  return `/usr/lib/systemd/boot/efi/linux${STUB_ARCH[kernel.imageInfo.arch] ?? 'x64'}.efi.stub`;
}

/** A ready UKI for this kernel, or undefined when one must be built. */
export async function prebuiltUki(kernel: StagedKernel): Promise<string | undefined> {
  if (kernel.imageInfo.format === 'uki') return kernel.image;
  for (const candidate of [path.join(kernel.stagingArea, 'uki.efi'), path.join(path.dirname(kernel.image), 'uki.efi')]) {
    if (await isFile(candidate)) return candidate;
  }
  return undefined;
}

/**
 * dracut --uefi makes the UKI's initramfs itself when dracut (or nothing) was to make one anyway;
 * an initramfs from elsewhere (--initrd, an `initrd` beside the image, another generator) is kept
 * and the UKI assembled around it with objcopy. Decided from data alone, so --dry-run agrees.
 */
export const dracutBuildsInitramfs = (kernel: StagedKernel) => !kernel.initrd || kernel.initrdGenerator === 'dracut';

export const ukiGenerator = (ctx: Context) => ctx.settings.ukiGenerator ?? 'dracut';

/**
 * Builds the UKI into the staging area. This runs from plan(): the staging area is kinstall's own
 * scratch dir, removed when the run ends, so nothing on the system changes until the commit places
 * the file; under --dry-run the exec wrapper only logs the dracut command.
 */
export async function buildUki(ctx: Context, kernel: StagedKernel): Promise<string> {
  const out = path.join(kernel.stagingArea, BUILT_NAME);
  const cmdline = (await readKernelCmdline(ctx))?.cmdline ?? '';
  const base = dracutArguments(ctx, kernel, out);
  const uefi = [
    '--uefi',
    '--uefi-stub',
    stubPath(ctx, kernel),
    '--kernel-image',
    kernel.image,
    // Without this dracut would embed the host's /proc/cmdline when the line is empty.
    '--no-hostonly-cmdline',
    ...(cmdline ? ['--kernel-cmdline', cmdline] : []),
  ];
  await ctx.exec.run(dracutCommand(ctx), [...base.slice(0, -1), ...uefi, out], { streamOutput: ctx.request.verbose });
  return prependMicrocode(ctx, kernel, out);
}

/** A UKI's one initrd section written to `out`: the early microcode images first, then the initramfs. */
export async function writeMicrocodeFirst(kernel: StagedKernel, initrd: string, out: string): Promise<void> {
  const parts = [...(kernel.microcode ?? []), initrd];
  await writeFile(out, Buffer.concat(await Promise.all(parts.map((f) => readFile(f)))), { mode: 0o600 });
}

/**
 * dracut's own early microcode (--early-microcode) comes from the host's firmware files; it cannot
 * take the target's prebuilt images. So the UKI's .initrd section is rebuilt with objcopy: those
 * images first, then the initramfs dracut put there, at the address dracut gave the section. The
 * kernel takes the first microcode it finds for its CPU, so the target's wins over dracut's.
 */
async function prependMicrocode(ctx: Context, kernel: StagedKernel, uki: string): Promise<string> {
  const microcode = kernel.microcode ?? [];
  if (microcode.length === 0) return uki;
  const section = path.join(kernel.stagingArea, 'kinstall-uki-dracut-initrd.img');
  const joined = path.join(kernel.stagingArea, 'kinstall-uki-initrd-with-microcode.img');
  const out = path.join(kernel.stagingArea, 'kinstall-uki-microcode.efi');
  ctx.log.info(`putting the early microcode ${microcode.join(', ')} in front of the initramfs in the UKI's .initrd section`);
  await ctx.exec.run('objcopy', ['-O', 'binary', '--only-section=.initrd', uki, section]);
  // Under --dry-run neither dracut nor objcopy ran: there is nothing to join, only commands to show.
  if (!ctx.request.dryRun) await writeMicrocodeFirst(kernel, section, joined);
  // --update-section would keep the section's old size in a PE file: removed and added again instead.
  const vma = hex(initrdVma(kernel));
  await ctx.exec.run('objcopy', [
    '--remove-section',
    '.initrd',
    '--add-section',
    `.initrd=${joined}`,
    '--change-section-vma',
    `.initrd=${vma}`,
    uki,
    out,
  ]);
  return out;
}

/** Problems every UKI kinstall makes has, by dracut or by objcopy: the generator, stub, kernel. */
export async function ukiProblems(ctx: Context, kernel: StagedKernel): Promise<string[]> {
  const problems: string[] = [];
  // Another uki_generator (ukify) is a hook's to make: the core checks that one would run (ukiGenerators).
  if (!(await ctx.exec.which('objcopy'))) problems.push('objcopy is not installed (it puts the UKI together; install binutils)');
  const stub = stubPath(ctx, kernel);
  if (!(await isFile(stub)))
    problems.push(`the EFI stub ${stub} is missing (install systemd-boot-efi, or set uki.stub in the config file)`);
  if (!kernel.imageInfo.efiStub)
    problems.push(
      `${kernel.image} has no EFI stub (PE header), which the UKI stub starts it through: build it with CONFIG_EFI_STUB=y`,
    );
  const room = initrdVma(kernel) - LINUX_VMA;
  if (kernel.imageInfo.size > room) {
    const mib = (kernel.imageInfo.size / 1024 / 1024).toFixed(1);
    problems.push(
      `the kernel image is ${mib} MiB, over the ${room / 1024 / 1024} MiB a dracut 059 UKI has room for ` +
        `(it places the kernel at ${hex(LINUX_VMA)} and the initrd at ${hex(initrdVma(kernel))}): build a smaller kernel, or use the bls layout`,
    );
  }
  return problems;
}

/** Problems only a dracut build has: dracut itself and the modules it puts in the initramfs. */
export async function dracutProblems(ctx: Context, kernel: StagedKernel): Promise<string[]> {
  const problems: string[] = [];
  if (!(await ctx.exec.which(dracutCommand(ctx))))
    problems.push(`${dracutCommand(ctx)} is not installed (needed to build the UKI)`);
  // With initramfs dracut the generator's own preflight already says so.
  if (kernel.initrdGenerator !== 'dracut' && !(await isFile(path.join(kernel.moduleDir, 'modules.order')))) {
    problems.push(
      `dracut needs the modules of ${kernel.version} in ${kernel.moduleDir} to build the UKI's initramfs (run make modules_install)`,
    );
  }
  return problems;
}
