// The bootability check: before anything changes, the kernel's own config is read and checked
// against what booting this target needs (root filesystem and device drivers, the initramfs's
// format and init, the layout's way of booting). Every unmet option is named in one error;
// --force (or bootabilityCheck = "warn") installs anyway with a warning.
import { readFile } from 'node:fs/promises';
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { configValue, findKernelConfig, readKernelConfig } from '../system/kernel-config.js';
import { readInitramfsLayout } from '../system/initramfs-format.js';
import { holdsModules } from '../system/neutral-location.js';
import { rootNeeds, type RootNeed } from '../system/root-device.js';
import type { InitramfsCompression, InitramfsGenerator, KernelConfig, Layout, StagedKernel } from '../types.js';

export interface BootabilitySubject {
  kernel: StagedKernel;
  /** The config found with the image being staged (the neutral location's may be an older one). */
  sources?: { config?: string };
  layout: Layout;
  generator?: InitramfsGenerator;
  prebuiltInitrds: string[];
}

/** The options systemd's README lists as required of the kernel (SYSFS_DEPRECATED must be off). */
const SYSTEMD_OPTIONS = [
  'DEVTMPFS',
  'CGROUPS',
  'INOTIFY_USER',
  'SIGNALFD',
  'TIMERFD',
  'EPOLL',
  'UNIX',
  'SYSFS',
  'PROC_FS',
  'FHANDLE',
];

const RD_OPTION: Record<Exclude<InitramfsCompression, 'none'>, string> = {
  gzip: 'RD_GZIP',
  bzip2: 'RD_BZIP2',
  lzma: 'RD_LZMA',
  xz: 'RD_XZ',
  lzo: 'RD_LZO',
  lz4: 'RD_LZ4',
  zstd: 'RD_ZSTD',
};

/** What the initramfs will be, as far as it can be known before it exists. */
interface InitramfsFacts {
  what: string;
  compressions: InitramfsCompression[];
  /** undefined: cannot tell whether it carries the root's modules. */
  carriesModules?: boolean;
  runsSystemd: boolean;
  required: readonly string[];
}

async function initramfsFacts(
  ctx: Context,
  subject: BootabilitySubject,
  config: KernelConfig,
  warnings: string[],
): Promise<InitramfsFacts | undefined> {
  const { generator, prebuiltInitrds, kernel } = subject;
  if (prebuiltInitrds.length > 0) {
    const compressions: InitramfsCompression[] = [];
    for (const file of prebuiltInitrds) {
      const layout = readInitramfsLayout(await readFile(file));
      if ('parts' in layout) compressions.push(...layout.parts.map((p) => p.format));
    }
    return { what: 'the prebuilt initramfs', compressions, runsSystemd: false, required: [] };
  }
  if (!generator?.producesImage) return undefined;
  const traits = await generator.describeInitramfs?.(ctx, kernel, config);
  if (!traits?.compression)
    warnings.push(`cannot tell how the ${generator.name} initramfs will be compressed: check its RD_* option by hand`);
  return {
    what: `the ${generator.name} initramfs`,
    compressions: traits?.compression ? [traits.compression] : [],
    carriesModules: traits?.carriesModules,
    runsSystemd: traits?.runsSystemd ?? false,
    required: generator.requiredKernelConfig ?? [],
  };
}

const rank = (value: string) => (value === 'y' ? 2 : value === 'm' ? 1 : 0);

/** The best state of a need: an alternative is as built as its least built option. */
function needState(config: KernelConfig, need: RootNeed): number {
  return Math.max(...need.alternatives.map((alt) => Math.min(...alt.map((o) => rank(configValue(config, o))))));
}

const optionList = (alt: string[], value: string) => alt.map((o) => `CONFIG_${o}=${value}`).join(' and ');

/** A root need met by =y, or by =m when the initramfs loads modules; a prebuilt one: a warning. */
function checkRootNeed(
  config: KernelConfig,
  need: RootNeed,
  initramfs: InitramfsFacts | undefined,
  unmet: string[],
  warnings: string[],
): void {
  const state = needState(config, need);
  const wanted = need.alternatives.map((alt) => optionList(alt, 'y')).join(' or ');
  if (state === 2) return;
  if (!initramfs) {
    unmet.push(`${wanted} for ${need.what}: without an initramfs it must be built in`);
  } else if (state === 0) {
    unmet.push(`${wanted} (or =m, loaded by ${initramfs.what}) for ${need.what}`);
  } else if (initramfs.carriesModules === undefined) {
    warnings.push(`${need.what} is a module (=m): cannot know whether ${initramfs.what} carries it`);
  }
}

function checkBuiltIn(config: KernelConfig, options: readonly string[], why: string, unmet: string[]): void {
  for (const option of options) {
    if (configValue(config, option) !== 'y') unmet.push(`CONFIG_${option}=y for ${why} (found ${configValue(config, option)})`);
  }
}

/** Every rule, as lines naming the option and the value it needs; warnings for what cannot be known. */
export async function findUnmetOptions(
  ctx: Context,
  subject: BootabilitySubject,
  config: KernelConfig,
): Promise<{ unmet: string[]; warnings: string[]; checked: string[] }> {
  const unmet: string[] = [];
  const warnings: string[] = [];
  const initramfs = await initramfsFacts(ctx, subject, config, warnings);
  const root = await rootNeeds(ctx);
  for (const need of root.needs) checkRootNeed(config, need, initramfs, unmet, warnings);
  if (initramfs) {
    checkBuiltIn(config, ['BLK_DEV_INITRD'], `loading ${initramfs.what}`, unmet);
    for (const compression of new Set(initramfs.compressions)) {
      if (compression !== 'none')
        checkBuiltIn(config, [RD_OPTION[compression]], `unpacking ${initramfs.what} (${compression})`, unmet);
    }
    checkBuiltIn(config, initramfs.required, initramfs.what, unmet);
    if (initramfs.runsSystemd) {
      checkBuiltIn(
        config,
        SYSTEMD_OPTIONS.filter((o) => !initramfs.required.includes(o)),
        `systemd in ${initramfs.what}`,
        unmet,
      );
      if (configValue(config, 'SYSFS_DEPRECATED') === 'y')
        unmet.push(`CONFIG_SYSFS_DEPRECATED is not set, for udev in ${initramfs.what} (found y)`);
    }
  }
  checkBuiltIn(config, subject.layout.requiredKernelConfig ?? [], `the ${subject.layout.name} layout`, unmet);
  if (await holdsModules(subject.kernel.moduleDir))
    checkBuiltIn(config, ['MODULES'], `the modules in ${subject.kernel.moduleDir}`, unmet);
  const checked = [...root.needs.map((n) => n.what), initramfs?.what ?? 'no initramfs', `the ${subject.layout.name} layout`];
  return { unmet, warnings, checked: [...checked, ...root.unknown.map((u) => `not known: ${u}`)] };
}

/** The check as a step: refuses an unbootable config (EUNBOOTABLE, exit 4) unless forced. */
export async function checkBootability(ctx: Context, subject: BootabilitySubject): Promise<void> {
  const { kernel } = subject;
  const file = await findKernelConfig([subject.sources?.config, kernel.config], kernel.image);
  if (!file) {
    ctx.log.warn(
      `bootability check skipped: no kernel config found for ${kernel.version} (a bare image); give the .config beside the image or System.map`,
    );
    return;
  }
  const config = await readKernelConfig(file);
  const { unmet, warnings, checked } = await findUnmetOptions(ctx, subject, config);
  for (const warning of warnings) ctx.log.warn(`bootability check: ${warning}`);
  if (unmet.length === 0) {
    ctx.log.info(`bootability check passed (${file}): ${checked.join(', ')}`);
    return;
  }
  const forced = ctx.request.force || ctx.settings.bootabilityCheck === 'warn';
  if (forced) {
    const how = ctx.request.force ? '--force' : 'bootabilityCheck = "warn"';
    for (const line of unmet) ctx.log.warn(`bootability check: the kernel may not boot: needs ${line}`);
    ctx.log.warn(`bootability check failed for ${kernel.version} (${file}); installing anyway (${how})`);
    return;
  }
  throw new KinstallError('EUNBOOTABLE', { version: kernel.version, count: String(unmet.length) }, [
    ...unmet.map((line) => `needs ${line}`),
    `config: ${file}`,
    'enable them (scripts/config --enable NAME, then make olddefconfig and rebuild), or install anyway with --force',
  ]);
}
