// The contracts between the core and its plugins: plans, staged kernels, layouts, generators.
// Plugins reach them through plugin-api.ts, the one core module they may import (eslint enforces it).
import type { Context } from './context.js';

/** What `inspect` learns from a kernel image file. */
export interface KernelImageInfo {
  path: string;
  /** bzImage, arm64 Image, a plain ELF vmlinux, a PE/EFI application, or a Unified Kernel Image. */
  format: 'bzImage' | 'arm64-image' | 'vmlinux' | 'pe' | 'uki';
  arch: 'x86' | 'x86_64' | 'arm64' | 'unknown';
  /** The kernel release (`uname -r`) found in the image, when the format records one. */
  version?: string;
  /** The image is a PE/COFF executable the firmware can start (EFI stub or UKI). */
  efiStub: boolean;
  size: number;
}

/** How an initramfs is compressed; `none`: an uncompressed cpio archive. */
export type InitramfsCompression = 'none' | 'gzip' | 'bzip2' | 'lzma' | 'xz' | 'lzo' | 'lz4' | 'zstd';

/** A kernel's build configuration: option name without `CONFIG_` → `y`, `m`, `n` or its value. */
export interface KernelConfig {
  file: string;
  values: ReadonlyMap<string, string>;
}

/** What the bootability check needs to know of the initramfs a generator will make. */
export interface InitramfsTraits {
  /** The compression it will use; undefined when the generator cannot tell. */
  compression?: InitramfsCompression;
  /** It carries the kernel modules the root device and filesystem need (=m is then enough). */
  carriesModules: boolean;
  /** Its init is systemd, which needs the kernel options systemd's README lists. */
  runsSystemd: boolean;
}

/** A kernel in the neutral location, ready for a layout to place. */
export interface StagedKernel {
  version: string;
  /** `<root>/lib/modules/KVER`. */
  moduleDir: string;
  image: string;
  imageInfo: KernelImageInfo;
  systemMap?: string;
  config?: string;
  /** The initramfs to install, generated or prebuilt; absent when the generator is `none`. */
  initrd?: string;
  /** Who makes `initrd`, as hooks see it: `prebuilt` (--initrd, an `initrd` beside the image) or the generator's name. */
  initrdGenerator?: string;
  /** Where generated files go; removed when the run ends. */
  stagingArea: string;
  /**
   * Early microcode images (cpio archives the kernel reads before the initramfs), host paths: the
   * target's /boot/intel-uc.img and /boot/amd-uc.img, and `microcode*` a preinst hook left in the
   * staging area without an initrd. A layout that loads several initrds loads these first.
   */
  microcode?: string[];
  /**
   * Installed as a trial (`add --try`): the layout's plan and activate make it boot next, once,
   * while the default before the install stays the default; `kinstall confirm` makes it the default.
   */
  trial?: boolean;
}

export interface PlacedFile {
  from: string;
  to: string;
  mode?: number;
  /**
   * The firmware (or shim) checks this file's signature under Secure Boot: an EFI-stub kernel, a
   * UKI. With signing configured, the core signs a copy in the staging area and places that.
   */
  verifiedByFirmware?: boolean;
}

export interface WrittenFile {
  path: string;
  content: string | Buffer;
  mode?: number;
}

export interface PlannedLink {
  path: string;
  target: string;
}

/**
 * What a layout wants done to the boot dir or ESP. Pure data: the transaction is the only code
 * that carries it out. Operations run in this order: place, write, link, remove.
 */
export interface Plan {
  place: PlacedFile[];
  write: WrittenFile[];
  link: PlannedLink[];
  /** Files and links; a directory is removed only when it is empty by then (its files listed first). */
  remove: string[];
  /** The installed kernel image, as hooks and the history log name it. */
  image?: string;
  /** Human notes shown with the plan (for example, what activation will run). */
  notes?: string[];
}

export function emptyPlan(): Plan {
  return { place: [], write: [], link: [], remove: [] };
}

/** One line per operation, as --dry-run and the log show a plan. */
export function describePlan(plan: Plan): string[] {
  return [
    ...plan.place.map((p) => `place ${p.from} -> ${p.to}${p.verifiedByFirmware ? ' (verified by the firmware)' : ''}`),
    ...plan.write.map((w) => `write ${w.path}`),
    ...plan.link.map((l) => `link ${l.path} -> ${l.target}`),
    ...plan.remove.map((r) => `remove ${r}`),
    ...(plan.notes ?? []),
  ];
}

/** One kernel as a layout sees it installed. */
export interface InstalledKernel {
  version: string;
  layout: string;
  /** Every file of this kernel the layout installed (image and initramfs files among them). */
  files: string[];
  /** Which of `files` is the image the boot loader starts (a UKI is an image too). */
  image: string;
  /** Which of `files` are initramfs images loaded with it, in load order; empty when none. */
  initrds: string[];
  entry?: string;
  size: number;
  /** The layout knows this kernel boots by default (the vmlinuz link, the default entry). */
  isDefault?: boolean;
}

/** A handle a layout's activate step uses to stage more changes into the running transaction. */
export interface TransactionHandle {
  apply(plan: Plan): Promise<void>;
  /**
   * Work to do after a rollback restored the files: a bootloader tool that recorded the new files
   * (lilo's map, a firmware entry) must run again on the restored ones. Run newest first.
   * `note` (JSON) is what a recovery after a crash needs to do the same without this process: the
   * journal keeps the layout's first note and gives it to the layout's `recover`.
   */
  onRollback(action: () => Promise<void>, note?: unknown): void;
}

/** The option keys a plugin accepts in its section of the config file, with their types. */
export type OptionSchema = Record<string, 'string' | 'string[]' | 'number' | 'boolean'>;

/**
 * A boot layout: where a kernel's files go and which bootloader tool learns of them. `name`,
 * `plan`, `planRemove` and `list` are required; every other member is an optional capability the
 * core uses only when present.
 */
export interface Layout {
  name: string;
  /** Other names `--layout` and `layout=` accept (bls: `systemd-boot`). */
  aliases?: string[];
  /** Optional: the keys of the layout's section of the config file (read with `pluginOptions`). */
  optionSchema?: OptionSchema;
  /** Optional: the kernel architectures its bootloader can start; absent: any. */
  architectures?: KernelImageInfo['arch'][];
  /**
   * Optional, for layout=auto: the layout chosen when nothing else is (compat). The first layout
   * that declares it is the fallback; registry order plays no part in it.
   */
  fallback?: boolean;
  /**
   * Optional, for layout=auto on install: a reason string when this image is the layout's own kind
   * (a Unified Kernel Image for uki), else undefined. A layout with `claimsImage` is chosen for an
   * install only when it claims the image; its `inUse` then serves list and remove.
   */
  claimsImage?(ctx: Context, image: KernelImageInfo): Promise<string | undefined>;
  /**
   * Optional, for layout=auto: a reason string when the layout is in use on this machine (grub.cfg,
   * lilo.conf, loader/entries exist), else undefined. Without it the layout is never chosen by
   * being in use, and list and remove always ask its `list()`.
   */
  inUse?(ctx: Context): Promise<string | undefined>;
  /** Pure: reads the machine, returns what to change, changes nothing. */
  plan(ctx: Context, kernel: StagedKernel): Promise<Plan>;
  /**
   * Optional: runs the bootloader tool for `kernel` after its plan was committed; idempotent. It may
   * stage more changes with `txn.apply` and register rollback work with `txn.onRollback`.
   */
  activate?(ctx: Context, kernel: StagedKernel, plan: Plan, txn: TransactionHandle): Promise<void>;
  planRemove(ctx: Context, version: string): Promise<Plan>;
  /** Optional: runs the bootloader tool after a removal plan was committed (grub-mkconfig, efibootmgr -B). */
  deactivate?(ctx: Context, version: string, plan: Plan, txn: TransactionHandle): Promise<void>;
  /**
   * Optional: after a crash, once the files are restored, undoes what the layout's bootloader tool
   * did for the dead run, from the note it gave `txn.onRollback` (undefined when it gave none):
   * efistub puts firmware entries back, lilo runs lilo again on the restored files. A layout that
   * registered rollback work without it is reported as needing a check by hand.
   */
  recover?(ctx: Context, note: unknown): Promise<void>;
  /**
   * Optional: after a crash, deletes what the layout's bootloader tool may have left half-written
   * outside the transaction (grub-mkconfig's output beside grub.cfg); returns the paths deleted.
   * Asked of every layout, whichever one the dead run used.
   */
  sweep?(ctx: Context): Promise<string[]>;
  list(ctx: Context): Promise<InstalledKernel[]>;
  /** Optional: tools this layout will run, checked in preflight. */
  requiredTools?(ctx: Context): string[];
  /** Optional: the layout's own checks; each problem is one line saying what is wrong and how to fix it. */
  preflight?(ctx: Context, kernel: StagedKernel): Promise<string[]>;
  /** Optional: kernel options (without `CONFIG_`) the layout's way of booting needs built in (=y). */
  requiredKernelConfig?: readonly string[];
  /**
   * Optional: true when the layout's image carries an initramfs the layout generates itself (a UKI
   * built by dracut --uefi): the core's initramfs step then generates none and leaves
   * `kernel.initrd` unset. Asked only when an initramfs would be generated, never for a prebuilt one.
   */
  buildsInitramfs?(ctx: Context, kernel: StagedKernel): Promise<boolean>;
  /**
   * Optional: the uki_generator values the layout builds UKIs with itself (uki: dracut). Another
   * value (ukify) is a hook's to make: preflight wants a preinst hook named after it, which must
   * leave uki.efi in the staging area. Absent: the layout builds no UKI and ignores uki_generator.
   */
  ukiGenerators?: readonly string[];
  /** Optional: try-once boots with automatic fallback; absent: `--try` is refused (compat). */
  trial?: TrialSupport;
  /** Optional: why this layout cannot try a kernel once, for the refusal of `--try` (compat: no boot loader to steer). */
  noTrialReason?: string;
}

export interface InitramfsGenerator {
  name: string;
  optionSchema?: OptionSchema;
  /** Writes an initramfs for the kernel to outFile; undefined outFile never happens for `none`. */
  generate(ctx: Context, kernel: StagedKernel, outFile: string): Promise<void>;
  /** False for `none`: the pipeline then installs no initramfs. */
  producesImage: boolean;
  requiredTools?(ctx: Context): string[];
  /** The generator's own checks, as Layout.preflight. */
  preflight?(ctx: Context, kernel: StagedKernel): Promise<string[]>;
  /** Optional: kernel options (without `CONFIG_`) its initramfs needs built in (=y). */
  requiredKernelConfig?: readonly string[];
  /** Optional: what its initramfs for this kernel will be; without it the bootability check cannot tell. */
  describeInitramfs?(ctx: Context, kernel: StagedKernel, config: KernelConfig): Promise<InitramfsTraits>;
}

/**
 * What a boot loader's own state says of a trial kernel:
 * - `armed`: it boots next, once; the previous default stays the default;
 * - `spent`: its one boot was used (it is running unconfirmed, or it failed and the loader fell back);
 * - `default`: it boots by default (confirmed, or made the default by hand).
 */
export type TrialBootState = 'armed' | 'spent' | 'default';

/**
 * Optional capability of a layout: boot a kernel once as a trial and fall back by itself when it
 * does not come up (`add --try`, `kinstall confirm`). The layout's `plan` and `activate` arm the
 * trial when `kernel.trial` is set; a layout without it refuses `--try`.
 */
export interface TrialSupport {
  /** A trial's own preflight problems, each one line with its fix (grub: GRUB_DEFAULT must be saved). */
  preflight?(ctx: Context, kernel: StagedKernel): Promise<string[]>;
  /** The loader's state of `version`'s trial; undefined when the loader shows no trace of one. */
  state(ctx: Context, version: string): Promise<TrialBootState | undefined>;
  /** Makes `version` (booted as a trial, healthy) the default of every later boot, through `txn`. */
  confirm(ctx: Context, version: string, txn: TransactionHandle): Promise<void>;
}

/** The built-in and loaded plugins, handed to the core by the CLI. */
export interface PluginRegistry {
  layouts: Layout[];
  generators: InitramfsGenerator[];
}
