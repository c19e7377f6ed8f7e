// Command-line options shared by `kinstall` and `installkernel`, parsed with node:util into a Request.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import path from 'node:path';
import type { Request } from '../core/context.js';
import { errorMessage, KinstallError } from '../core/errors.js';
import { asTargetPath } from '../core/paths.js';

const globalOptions = {
  root: { type: 'string' },
  layout: { type: 'string' },
  initramfs: { type: 'string' },
  'boot-dir': { type: 'string' },
  esp: { type: 'string' },
  cmdline: { type: 'string' },
  config: { type: 'string' },
  keep: { type: 'string' },
  'make-room': { type: 'boolean' },
  try: { type: 'boolean' },
  initrd: { type: 'string', multiple: true },
  'dry-run': { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  json: { type: 'boolean' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  'build-dir': { type: 'string' },
  'modules-dir': { type: 'string' },
  all: { type: 'boolean', short: 'a' },
  'keep-modules': { type: 'boolean' },
  timeout: { type: 'string' },
  depmod: { type: 'string' },
  jobs: { type: 'string', short: 'j' },
} as const satisfies ParseArgsConfig['options'];

export type ParsedValues = {
  [K in keyof typeof globalOptions]?: (typeof globalOptions)[K] extends { multiple: true }
    ? string[]
    : (typeof globalOptions)[K]['type'] extends 'boolean'
      ? boolean
      : string;
};

export interface ParsedCommandLine {
  values: ParsedValues;
  positionals: string[];
}

export function parseCommandLine(argv: string[]): ParsedCommandLine {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: globalOptions, allowPositionals: true, strict: true });
    return { values: values as ParsedValues, positionals };
  } catch (error) {
    throw new KinstallError('EUSAGE', { what: `${errorMessage(error, { firstLine: true })} (see --help)` });
  }
}

/** Options that only some commands take; any other command refuses them. */
export function refuseOptions(values: ParsedValues, names: Array<keyof ParsedValues>, command: string): void {
  for (const name of names) {
    if (values[name] !== undefined)
      throw new KinstallError('EUSAGE', { what: `--${name} is not an option of ${command} (see --help)` });
  }
}

function parseKeep(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value)) throw new KinstallError('EUSAGE', { what: `--keep takes a whole number, found "${value}"` });
  return Number(value);
}

/** installkernel --all --jobs N: a whole number from 1; undefined when not given. */
export function parseJobs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,3}$/.test(value))
    throw new KinstallError('EUSAGE', { what: `--jobs takes a whole number from 1 to 9999, found "${value}"` });
  return Number(value);
}

function parseDepmod(value: string | undefined): 'auto' | 'always' | undefined {
  if (value === undefined || value === 'auto' || value === 'always') return value;
  throw new KinstallError('EUSAGE', { what: `--depmod takes auto or always, found "${value}"` });
}

export function buildRequest(values: ParsedValues, cwd: string, bootDir?: string): Request {
  const root = path.resolve(cwd, values.root ?? '/');
  // DIR, --boot-dir and --esp name places of the target: one already spelled with the root loses it.
  const targetPath = (dir: string | undefined) => (dir === undefined ? undefined : asTargetPath(root, dir));
  return {
    root,
    dryRun: values['dry-run'] ?? false,
    verbose: values.verbose ?? false,
    json: values.json ?? false,
    force: values.force ?? false,
    depmod: parseDepmod(values.depmod),
    cwd,
    overrides: {
      layout: values.layout,
      initrdGenerator: values.initramfs,
      bootDir: targetPath(bootDir ?? values['boot-dir']),
      bootRoot: targetPath(values.esp),
      cmdline: values.cmdline,
      keep: parseKeep(values.keep),
      makeRoom: values['make-room'],
      tryOnce: values.try,
      configFile: values.config === undefined ? undefined : path.resolve(cwd, values.config),
    },
  };
}
