// A UKI put together with objcopy around an initramfs made elsewhere (--initrd, Gentoo's `initrd`
// beside the image): the systemd stub plus the sections dracut 059 adds, at the addresses it uses.
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readKernelCmdline, resolveInRoot, type Context, type StagedKernel } from '../../src/core/plugin-api.js';
import { hex, initrdVma, LINUX_VMA, stubPath, writeMicrocodeFirst } from './build.js';

const ASSEMBLED_NAME = 'kinstall-uki-assembled.efi';
const CMDLINE_NAME = 'kinstall-uki-cmdline.txt';
/** dracut.sh's addresses for the small sections, between the stub's own and the kernel. */
const OSREL_VMA = 0x20000;
const CMDLINE_VMA = 0x30000;

const addSection = (name: string, file: string, vma: number) => [
  '--add-section',
  `${name}=${file}`,
  '--change-section-vma',
  `${name}=${hex(vma)}`,
];

/**
 * The target's os-release, which systemd-boot reads from .osrel to list the UKI (dracut without
 * --sysroot embeds the host's; kinstall describes the system the UKI boots).
 */
async function osReleaseFile(ctx: Context): Promise<string | undefined> {
  for (const name of ['/etc/os-release', '/usr/lib/os-release']) {
    const file = await resolveInRoot(ctx, ctx.paths.under(name));
    if (
      await stat(file).then(
        (s) => s.isFile() && s.size > 0,
        () => false,
      )
    )
      return file;
  }
  return undefined;
}

async function withMicrocode(kernel: StagedKernel, initrd: string): Promise<string> {
  if ((kernel.microcode ?? []).length === 0) return initrd;
  const joined = path.join(kernel.stagingArea, 'uki-initrd-with-microcode');
  await writeMicrocodeFirst(kernel, initrd, joined);
  return joined;
}

/**
 * Writes the UKI into the staging area from plan(), as buildUki does: only kinstall's scratch dir
 * changes, and under --dry-run the exec wrapper only logs the objcopy command.
 */
export async function assembleUki(ctx: Context, kernel: StagedKernel, initrd: string): Promise<string> {
  const out = path.join(kernel.stagingArea, ASSEMBLED_NAME);
  const cmdline = (await readKernelCmdline(ctx))?.cmdline ?? '';
  const osrel = await osReleaseFile(ctx);
  const args: string[] = [];
  if (osrel) args.push(...addSection('.osrel', osrel, OSREL_VMA));
  if (cmdline) {
    // NUL-terminated, as dracut writes it.
    const file = path.join(kernel.stagingArea, CMDLINE_NAME);
    await writeFile(file, `${cmdline}\0`, { mode: 0o600 });
    args.push(...addSection('.cmdline', file, CMDLINE_VMA));
  }
  args.push(
    ...addSection('.linux', kernel.image, LINUX_VMA),
    ...addSection('.initrd', await withMicrocode(kernel, initrd), initrdVma(kernel)),
  );
  ctx.log.info(`assembling the UKI with objcopy around the initramfs ${initrd} (${kernel.initrdGenerator ?? 'prebuilt'})`);
  await ctx.exec.run('objcopy', [...args, stubPath(ctx, kernel), out]);
  return out;
}

/** Problems only an assembly has: systemd-boot lists a UKI only when it carries an .osrel section. */
export async function assembleProblems(ctx: Context): Promise<string[]> {
  if (await osReleaseFile(ctx)) return [];
  return [
    `no os-release in ${ctx.paths.under('/etc/os-release')} or ${ctx.paths.under('/usr/lib/os-release')}, which the UKI must carry for systemd-boot to list it (install the distribution's base files)`,
  ];
}
