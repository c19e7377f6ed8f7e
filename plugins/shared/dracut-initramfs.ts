// What dracut's initramfs for a kernel will be, for the bootability check: its compressor and
// whether systemd runs in it, worked out as dracut 059 does from its config files, its arguments
// and the tools installed. dracut runs on the host (it is not chrooted under --root), so it reads
// the host's dracut.conf and packs the host's systemd: those are read here, not the target's.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  configValue,
  isFile,
  readKernelConfig,
  type Context,
  type InitramfsCompression,
  type InitramfsTraits,
  type KernelConfig,
  type StagedKernel,
} from '../../src/core/plugin-api.js';
import { dracutArguments } from './dracut.js';

const COMPRESSOR: Record<string, InitramfsCompression> = {
  gzip: 'gzip',
  pigz: 'gzip',
  bzip2: 'bzip2',
  lbzip2: 'bzip2',
  lzma: 'lzma',
  xz: 'xz',
  lzop: 'lzo',
  lz4: 'lz4',
  zstd: 'zstd',
  cat: 'none',
};
/** dracut's own choice when none is configured (or the configured one cannot be used), in its order. */
const AUTO_ORDER = ['pigz', 'gzip', 'lz4', 'lzop', 'zstd', 'lzma', 'xz', 'lbzip2', 'bzip2', 'cat'];
const FLAG_COMPRESSOR: Record<string, string> = {
  '--gzip': 'gzip',
  '--bzip2': 'bzip2',
  '--lzma': 'lzma',
  '--xz': 'xz',
  '--lzo': 'lzop',
  '--lz4': 'lz4',
  '--zstd': 'zstd',
  '--no-compress': 'cat',
};

interface DracutChoices {
  compress?: string;
  omit: string[];
  /** dracutmodules=/--modules: only these (and their dependencies) when set. */
  only?: string[];
}

/** The value of an option given as `--name VALUE` or `--name=VALUE` (or a short `-x VALUE`). */
function optionValues(args: readonly string[], names: string[]): string[] {
  const found: string[] = [];
  args.forEach((arg, i) => {
    for (const name of names) {
      if (arg === name && args[i + 1] !== undefined) found.push(args[i + 1] ?? '');
      else if (arg.startsWith(`${name}=`)) found.push(arg.slice(name.length + 1));
    }
  });
  return found;
}

const words = (text: string) => text.split(/\s+/).filter(Boolean);

/** `name="value"`, `name+=" value "` assignments of a dracut.conf (shell syntax, simple forms only). */
function readAssignments(text: string, into: DracutChoices): void {
  for (const line of text.split('\n')) {
    const match = /^\s*([a-z_]+)(\+?=)\s*(["']?)(.*?)\3\s*(#.*)?$/.exec(line);
    if (!match) continue;
    const [, name, op, , value = ''] = match;
    if (name === 'compress') into.compress = value;
    else if (name === 'omit_dracutmodules') into.omit = op === '+=' ? [...into.omit, ...words(value)] : words(value);
    else if (name === 'dracutmodules') into.only = op === '+=' ? [...(into.only ?? []), ...words(value)] : words(value);
  }
}

/** The config files dracut reads, in its order: dracut.conf, then the drop-ins by name (/etc masks /usr/lib). */
async function configFiles(args: readonly string[]): Promise<string[]> {
  const conf = optionValues(args, ['--conf', '-c']).pop() ?? '/etc/dracut.conf';
  const confDir = optionValues(args, ['--confdir']).pop() ?? '/etc/dracut.conf.d';
  const byName = new Map<string, string>();
  for (const dir of ['/usr/lib/dracut/dracut.conf.d', confDir]) {
    for (const name of await readdir(dir).catch(() => [] as string[]))
      if (name.endsWith('.conf')) byName.set(name, path.join(dir, name));
  }
  return [conf, ...[...byName.keys()].sort().map((name) => byName.get(name) ?? '')];
}

async function readChoices(ctx: Context, args: readonly string[]): Promise<DracutChoices> {
  const choices: DracutChoices = { omit: [] };
  for (const file of await configFiles(args)) readAssignments(await readFile(file, 'utf8').catch(() => ''), choices);
  if (ctx.env.INITRD_COMPRESS) choices.compress = ctx.env.INITRD_COMPRESS;
  const flag = args.filter((a) => FLAG_COMPRESSOR[a] !== undefined).map((a) => FLAG_COMPRESSOR[a]);
  const compress = [...optionValues(args, ['--compress']), ...flag].pop();
  if (compress) choices.compress = compress;
  if (args.includes('--no-compress')) choices.compress = 'cat';
  choices.omit.push(...optionValues(args, ['--omit', '-o']).flatMap(words));
  const only = optionValues(args, ['--modules', '-m']).flatMap(words);
  if (only.length > 0) choices.only = only;
  return choices;
}

/**
 * dracut drops zstd when the kernel config it finds lacks RD_ZSTD; it looks on the host, so under
 * --root it usually finds none and keeps zstd. A configured tool that is not installed is dropped too.
 */
async function chooseCompressor(
  ctx: Context,
  configured: string | undefined,
  config: KernelConfig,
): Promise<InitramfsCompression | undefined> {
  const zstdKnown = !ctx.isHostRoot || config.values.get('RD_ZSTD') === 'y';
  const usable = async (tool: string) => tool === 'cat' || (await ctx.exec.which(tool)) !== undefined;
  const tool = configured ? (words(configured)[0] ?? '') : undefined;
  if (tool && !(tool === 'zstd' && !zstdKnown) && (await usable(tool))) return COMPRESSOR[path.basename(tool)];
  for (const candidate of AUTO_ORDER) {
    if (candidate === 'zstd' && !zstdKnown) continue;
    if (await usable(candidate)) return COMPRESSOR[candidate];
  }
  return undefined;
}

/**
 * What kinstall asks dracut for when nothing configures a compressor: the one the kernel unpacks
 * fastest (zstd on all cores, else lz4's legacy frame the kernel reads, else gzip), among those the
 * kernel's config has (RD_*) and the host has installed; uncompressed when it has none of them.
 * Fast levels: unpacking speed hardly depends on the level, and dracut's own (zstd -15) is slow.
 */
const FASTEST: Array<{ option: string; tool: string; compress: string; compression: InitramfsCompression }> = [
  { option: 'RD_ZSTD', tool: 'zstd', compress: 'zstd -q -T0 -3', compression: 'zstd' },
  { option: 'RD_LZ4', tool: 'lz4', compress: 'lz4 -l -q -1', compression: 'lz4' },
  { option: 'RD_GZIP', tool: 'pigz', compress: 'pigz -6 -n', compression: 'gzip' },
  { option: 'RD_GZIP', tool: 'gzip', compress: 'gzip -6 -n', compression: 'gzip' },
];

export interface CompressionChoice {
  /** The arguments for dracut (`--compress PROGRAM`, or `--no-compress`). */
  args: string[];
  compression: InitramfsCompression;
}

async function fastestFor(ctx: Context, config: KernelConfig): Promise<CompressionChoice> {
  for (const candidate of FASTEST) {
    if (configValue(config, candidate.option) !== 'y') continue;
    if ((await ctx.exec.which(candidate.tool)) !== undefined)
      return { args: ['--compress', candidate.compress], compression: candidate.compression };
  }
  return { args: ['--no-compress'], compression: 'none' };
}

/**
 * kinstall's compressor for this kernel's initramfs; undefined when the user's dracut config, its
 * arguments or INITRD_COMPRESS name one (theirs is kept) or the kernel's config is unknown.
 */
export async function chooseDracutCompression(
  ctx: Context,
  kernel: StagedKernel,
  config?: KernelConfig,
): Promise<CompressionChoice | undefined> {
  const choices = await readChoices(ctx, dracutArguments(ctx, kernel, 'initrd'));
  if (choices.compress !== undefined) return undefined;
  const known = config ?? (kernel.config ? await readKernelConfig(kernel.config).catch(() => undefined) : undefined);
  return known ? fastestFor(ctx, known) : undefined;
}

export async function describeDracutInitramfs(
  ctx: Context,
  kernel: StagedKernel,
  config: KernelConfig,
): Promise<InitramfsTraits> {
  const args = dracutArguments(ctx, kernel, 'initrd');
  const choices = await readChoices(ctx, args);
  const omitted = ['systemd', 'systemd-initrd'].some((m) => choices.omit.includes(m));
  const notChosen = choices.only !== undefined && !choices.only.some((m) => m.startsWith('systemd'));
  const installed = (await isFile('/usr/lib/systemd/systemd')) || (await isFile('/lib/systemd/systemd'));
  const ours = choices.compress === undefined ? await fastestFor(ctx, config) : undefined;
  return {
    compression: ours ? ours.compression : await chooseCompressor(ctx, choices.compress, config),
    carriesModules: true,
    runsSystemd: installed && !omitted && !notChosen,
  };
}
