// Where the efistub layout puts a kernel on the ESP and how the firmware names it, from the
// plugin's options (`efistub` section of the config file) and os-release.
import path from 'node:path';
import {
  checkBootRootMounted,
  checkWritableDir,
  findBootRoot,
  isDirectory,
  pluginOptions,
  readOsRelease,
  type BootRoot,
  type Context,
  type OptionSchema,
  type StagedKernel,
} from '../../src/core/plugin-api.js';

/**
 * `vendor`: the directory under ESP/EFI/ (default os-release NAME, else Gentoo). `label`: the entry
 * label before the version (default os-release NAME, else the vendor). `disk`, `part`: the ESP's
 * disk and partition number for efibootmgr (default: from its mount). `bootOrderFirst`: put the
 * kernel's entry first in BootOrder (default true; false puts it last). `efivars`: whether EFI
 * variables may be written (default: /sys/firmware/efi/efivars exists on the real root, never under
 * --root). `efibootmgr`: the command.
 */
export const efistubSchema = {
  vendor: 'string',
  label: 'string',
  disk: 'string',
  part: 'number',
  bootOrderFirst: 'boolean',
  efivars: 'boolean',
  efibootmgr: 'string',
} as const satisfies OptionSchema;

export const efistubOptions = (ctx: Context) => pluginOptions(ctx, 'efistub', efistubSchema);
export const efibootmgrCommand = (ctx: Context) => efistubOptions(ctx).efibootmgr ?? 'efibootmgr';

/** os-release NAME as a directory name on a FAT filesystem: "Debian GNU/Linux" → "Debian_GNU_Linux". */
const asDirName = (name: string) => name.replace(/[^A-Za-z0-9._+-]+/g, '_').replace(/^[._]+|_+$/g, '');

export interface EfistubTarget {
  esp: BootRoot;
  vendor: string;
  label: string;
  /** Host directory ESP/EFI/<vendor>. */
  dir: string;
  imageName(version: string): string;
  initrdName(version: string): string;
  /** The kernel's early microcode: every image it has, in load order, in one file. */
  microcodeName(version: string): string;
  /** The path the firmware loads, `\EFI\<vendor>\<name>`. */
  efiPath(name: string): string;
}

export function validVendor(vendor: string): boolean {
  return /^[A-Za-z0-9._+-]+$/.test(vendor) && vendor !== '.' && vendor !== '..';
}

/** Undefined when no ESP is found. */
export async function efistubTarget(ctx: Context): Promise<EfistubTarget | undefined> {
  const esp = await findBootRoot(ctx);
  if (!esp) return undefined;
  const options = efistubOptions(ctx);
  const osName = (await readOsRelease(ctx)).NAME;
  const vendor = options.vendor ?? (osName && asDirName(osName) ? asDirName(osName) : 'Gentoo');
  return {
    esp,
    vendor,
    label: options.label ?? osName ?? vendor,
    dir: path.join(esp.dir, 'EFI', vendor),
    imageName: (version) => `vmlinuz-${version}.efi`,
    initrdName: (version) => `initramfs-${version}.img`,
    microcodeName: (version) => `microcode-${version}.img`,
    efiPath: (name) => `\\EFI\\${vendor}\\${name}`,
  };
}

/**
 * The files beside the image the kernel's firmware entry loads, in load order: early microcode
 * first, then the initramfs. plan() places exactly these, so the entry never names a missing file.
 */
export function loadedInitrds(target: EfistubTarget, kernel: StagedKernel): string[] {
  return [
    ...((kernel.microcode ?? []).length > 0 ? [target.microcodeName(kernel.version)] : []),
    ...(kernel.initrd ? [target.initrdName(kernel.version)] : []),
  ];
}

/** The ESP found must be the mounted ESP, and writable. */
export async function espProblems(ctx: Context, target: EfistubTarget): Promise<string[]> {
  return [...(await checkBootRootMounted(ctx, target.esp)), ...(await checkWritableDir(target.esp.dir, 'ESP'))];
}

/** EFI variables are writable: the option wins; else only the real root's efivars count. */
export async function firmwareAvailable(ctx: Context): Promise<{ available: boolean; why: string }> {
  const option = efistubOptions(ctx).efivars;
  if (option !== undefined) return { available: option, why: `efistub.efivars is ${String(option)}` };
  if (!ctx.isHostRoot) {
    return {
      available: false,
      why: `installing under --root ${ctx.paths.root}; set efistub.efivars to true to write this machine's firmware entries`,
    };
  }
  const present = await isDirectory('/sys/firmware/efi/efivars');
  return {
    available: present,
    why: present
      ? '/sys/firmware/efi/efivars exists'
      : 'no /sys/firmware/efi/efivars: booted without EFI, or efivarfs is not mounted',
  };
}
