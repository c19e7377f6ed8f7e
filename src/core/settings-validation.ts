// Checks the merged settings: the config file's keys against the core's and each plugin's schema,
// then every value; all problems together, as one ECONFIG.
import path from 'node:path';
import { KinstallError } from './errors.js';
import type { RawSettings, Settings } from './settings.js';
import type { OptionSchema, PluginRegistry } from './types.js';

const coreKeys: Record<string, 'string' | 'number' | 'string[]' | 'boolean'> = {
  layout: 'string',
  initramfs: 'string',
  ukiGenerator: 'string',
  bootDir: 'string',
  esp: 'string',
  machineId: 'string',
  cmdline: 'string',
  keep: 'number',
  lockTimeout: 'number',
  bootabilityCheck: 'string',
  plugins: 'string[]',
  runRedundant: 'string[]',
  targetHooks: 'string',
  makeRoom: 'boolean',
  tryOnce: 'boolean',
};
/** The core's own sections of the config file, each key mapped to its setting. */
const coreSections: Record<string, Record<string, { type: 'string'; setting: keyof RawSettings }>> = {
  secureboot: { key: { type: 'string', setting: 'secureBootKey' }, cert: { type: 'string', setting: 'secureBootCert' } },
};
const coreKeyToSetting: Record<string, keyof RawSettings> = {
  initramfs: 'initrdGenerator',
  esp: 'bootRoot',
};

function typeOf(value: unknown): string {
  if (Array.isArray(value)) return value.every((v) => typeof v === 'string') ? 'string[]' : 'array';
  return typeof value;
}

function checkSection(name: string, section: unknown, schema: OptionSchema, problems: string[], file: string) {
  if (typeof section !== 'object' || section === null || Array.isArray(section)) {
    problems.push(`${file}: "${name}" must be an object`);
    return;
  }
  for (const [key, value] of Object.entries(section)) {
    const want = schema[key];
    if (!want) problems.push(`${file}: unknown key "${name}.${key}" (known: ${Object.keys(schema).join(', ') || 'none'})`);
    else if (typeOf(value) !== want) problems.push(`${file}: "${name}.${key}" must be a ${want}`);
  }
}

/** What the config file's keys feed: the raw settings, the plugins' sections, the problems found. */
interface ConfigTargets {
  raw: RawSettings;
  pluginOptions: Record<string, Record<string, unknown>>;
  problems: string[];
}

/** Each key of the config file is a core setting of the right type or a plugin's section. */
export function checkConfigKeys(
  config: Record<string, unknown>,
  file: string,
  registry: PluginRegistry,
  into: ConfigTargets,
): void {
  const { raw, pluginOptions, problems } = into;
  const pluginByName = new Map<string, OptionSchema>(
    [...registry.layouts, ...registry.generators].map((p) => [p.name, p.optionSchema ?? {}]),
  );
  for (const [key, value] of Object.entries(config)) {
    const want = coreKeys[key];
    const schema = pluginByName.get(key);
    const section = coreSections[key];
    if (section) {
      const types = Object.fromEntries(Object.entries(section).map(([k, v]) => [k, v.type]));
      checkSection(key, value, types, problems, file);
      const entries = typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.entries(value) : [];
      for (const [k, v] of entries) {
        const known = section[k];
        if (known && typeof v === known.type) (raw as Record<string, unknown>)[known.setting] = v;
      }
    } else if (want) {
      if (typeOf(value) !== want) problems.push(`${file}: "${key}" must be a ${want}`);
      else (raw as Record<string, unknown>)[coreKeyToSetting[key] ?? key] = value;
    } else if (schema) {
      checkSection(key, value, schema, problems, file);
      pluginOptions[key] = value as Record<string, unknown>;
    } else {
      const known = [...Object.keys(coreKeys), ...Object.keys(coreSections), ...pluginByName.keys()].join(', ');
      problems.push(`${file}: unknown key "${key}" (known: ${known})`);
    }
  }
}

/** A yes/no setting from the config file (a boolean) or the environment (1/0, yes/no, true/false). */
function parseFlag(value: unknown): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value ?? false;
  const text = String(value).toLowerCase();
  if (['1', 'yes', 'true'].includes(text)) return true;
  if (['0', 'no', 'false'].includes(text)) return false;
  return undefined;
}

/** Every value checked; the settings frozen, or one ECONFIG with every problem. */
export function validateSettings(
  raw: RawSettings,
  pluginOptions: Record<string, Record<string, unknown>>,
  registry: PluginRegistry,
  problems: string[],
): Settings {
  const keep = raw.keep === undefined ? undefined : Number(raw.keep);
  if (keep !== undefined && (!Number.isInteger(keep) || keep < 1))
    problems.push(`keep must be a whole number of at least 1, found "${String(raw.keep)}"`);

  const layout = raw.layout ?? 'auto';
  const layoutNames = registry.layouts.flatMap((l) => [l.name, ...(l.aliases ?? [])]);
  if (layout !== 'auto' && !layoutNames.includes(layout)) {
    problems.push(`unknown layout "${layout}" (known: auto, ${layoutNames.join(', ')})`);
  }
  const initrdGenerator = raw.initrdGenerator ?? 'auto';
  // A name kinstall has no generator for (ugrd, mkinitcpio) is a hook's to make: preflight checks
  // that some hook could (docs/hooks.md, "Generators").
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(initrdGenerator)) {
    const known = registry.generators.map((g) => g.name).join(', ');
    problems.push(`invalid initramfs generator "${initrdGenerator}" (known: auto, ${known}, or a hook's generator name)`);
  }
  const lockTimeout = raw.lockTimeout === undefined ? 600 : Number(raw.lockTimeout);
  if (!Number.isFinite(lockTimeout) || lockTimeout < 0)
    problems.push(`lockTimeout must be a number of seconds, found "${String(raw.lockTimeout)}"`);
  const bootabilityCheck = raw.bootabilityCheck ?? 'refuse';
  if (bootabilityCheck !== 'refuse' && bootabilityCheck !== 'warn')
    problems.push(`bootabilityCheck must be "refuse" or "warn", found "${String(bootabilityCheck)}"`);
  const targetHooks = raw.targetHooks ?? 'run';
  if (!['run', 'host', 'skip'].includes(targetHooks))
    problems.push(`targetHooks must be "run", "host" or "skip", found "${String(targetHooks)}"`);
  const makeRoom = parseFlag(raw.makeRoom);
  if (makeRoom === undefined)
    problems.push(`makeRoom must be true or false (KINSTALL_MAKE_ROOM: 1 or 0), found "${String(raw.makeRoom)}"`);
  const tryOnce = raw.tryOnce === undefined ? undefined : parseFlag(raw.tryOnce);
  if (raw.tryOnce !== undefined && tryOnce === undefined)
    problems.push(`tryOnce must be true or false (KINSTALL_TRY_ONCE: 1 or 0), found "${String(raw.tryOnce)}"`);
  const { secureBootKey, secureBootCert } = raw;
  if ((secureBootKey === undefined) !== (secureBootCert === undefined)) {
    problems.push(
      `secureboot.key and secureboot.cert (SECUREBOOT_SIGN_KEY, SECUREBOOT_SIGN_CERT) go together: only the ${secureBootKey === undefined ? 'certificate' : 'key'} is set`,
    );
  }
  const bootDir = raw.bootDir ?? '/boot';
  if (!path.isAbsolute(bootDir)) problems.push(`boot dir must be an absolute path, found "${bootDir}"`);

  if (problems.length > 0) {
    throw new KinstallError(
      'ECONFIG',
      { what: problems.length === 1 ? (problems[0] ?? '') : `${problems.length} problems: ${problems.join('; ')}` },
      problems,
    );
  }
  for (const section of Object.values(pluginOptions)) Object.freeze(section);
  return Object.freeze({
    layout,
    initrdGenerator,
    ukiGenerator: raw.ukiGenerator,
    bootDir,
    bootRoot: raw.bootRoot,
    machineId: raw.machineId,
    cmdline: raw.cmdline,
    keep,
    lockTimeout,
    bootabilityCheck,
    plugins: raw.plugins ?? [],
    runRedundant: raw.runRedundant ?? [],
    targetHooks,
    secureBootKey,
    secureBootCert,
    makeRoom: makeRoom ?? false,
    tryOnce,
    pluginOptions: Object.freeze(pluginOptions),
  });
}
