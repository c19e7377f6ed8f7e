// Everything of the core a plugin may use, in one module: the contracts, errors, the shared system
// facts and checks, the file-system probes, and typed access to the plugin's own options.
// Plugins import from the core only this file (eslint's no-restricted-imports enforces it).
import type { Context } from './context.js';
import { KinstallError } from './errors.js';
import type { OptionSchema } from './types.js';

export type { Context } from './context.js';
export type { Exec, ExecOptions, ExecResult } from './exec.js';
export type { Logger } from './logger.js';
export {
  describePlan,
  emptyPlan,
  type InitramfsCompression,
  type InitramfsGenerator,
  type InitramfsTraits,
  type InstalledKernel,
  type KernelConfig,
  type KernelImageInfo,
  type Layout,
  type OptionSchema,
  type PlacedFile,
  type Plan,
  type PlannedLink,
  type PluginRegistry,
  type StagedKernel,
  type TransactionHandle,
  type TrialBootState,
  type TrialSupport,
  type WrittenFile,
} from './types.js';
export { errorMessage, isKinstallError, KinstallError, type ErrorCode } from './errors.js';
export { bootRootCandidates, findBootRoot, type BootRoot } from './system/boot-root.js';
export {
  readEntryToken,
  readKernelCmdline,
  readMachineId,
  readOsRelease,
  readTargetArch,
  type KernelCmdline,
} from './system/system-info.js';
export { compareVersions } from './system/versions.js';
export { checkBootRootMounted, checkMountedPerFstab, checkWritableDir } from './pipeline/preflight.js';
export { resolveInRoot } from './paths.js';
export { configValue, readKernelConfig } from './system/kernel-config.js';
export { isDirectory, isFile, isPlainFile, pathExists, totalSize } from './fs.js';
/** The core's read-only probes: fs/promises' signatures, made without the thread pool (quick-fs.ts). */
export * as quickFs from './quick-fs.js';

type OptionType = OptionSchema[string];

/** The TypeScript type of a value the schema declares. */
type OptionValue<T extends OptionType> = T extends 'string'
  ? string
  : T extends 'string[]'
    ? readonly string[]
    : T extends 'number'
      ? number
      : T extends 'boolean'
        ? boolean
        : never;

/** A plugin's options as its schema types them; every key is optional (unset in the config file). */
export type OptionValues<S extends OptionSchema> = { readonly [K in keyof S]?: OptionValue<S[K]> };

const hasType = (value: unknown, type: OptionType): boolean =>
  type === 'string[]' ? Array.isArray(value) && value.every((v) => typeof v === 'string') : typeof value === type;

/**
 * The plugin's section of the config file (keyed by its name), typed by its schema: only the keys
 * the schema declares. Settings validated the section already; a value of another type can only
 * come from a context built around that validation, and is refused rather than cast.
 */
export function pluginOptions<const S extends OptionSchema>(
  ctx: Pick<Context, 'settings'>,
  name: string,
  schema: S,
): OptionValues<S> {
  const section = ctx.settings.pluginOptions[name] ?? {};
  const values: Record<string, unknown> = {};
  for (const [key, type] of Object.entries(schema)) {
    const value = section[key];
    if (value === undefined) continue;
    if (!hasType(value, type)) throw new KinstallError('ECONFIG', { what: `"${name}.${key}" must be a ${type}` });
    values[key] = value;
  }
  return Object.freeze(values) as OptionValues<S>;
}
