// Settings, merged once: defaults < install.conf chain < cosmiconfig file < environment < CLI flags.
// This module reads the sources in that order; settings-validation.ts checks what they gave, and
// every problem is collected and reported together.
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { errorMessage, KinstallError } from './errors.js';
import { pathExists } from './fs.js';
import { readInstallConfChain } from './install-conf.js';
import { assertTrusted } from './pipeline/trust.js';
import { checkConfigKeys, validateSettings } from './settings-validation.js';
import type { InitramfsGenerator, Layout, PluginRegistry } from './types.js';

export interface Settings {
  /** `auto` or a layout name or alias. */
  layout: string;
  /** `auto` (dracut when installed, else none) or a generator name. */
  initrdGenerator: string;
  ukiGenerator?: string;
  /** The boot dir as the target system names it. */
  bootDir: string;
  /** BOOT_ROOT: where ESP layouts put their files (as the target names it). */
  bootRoot?: string;
  machineId?: string;
  cmdline?: string;
  /** How many kernels to keep; undefined keeps all. */
  keep?: number;
  /** Seconds a run waits for another kinstall on the same root before ELOCKED. */
  lockTimeout: number;
  /** `refuse` (default): a kernel config that cannot boot the target stops the install; `warn`: as --force. */
  bootabilityCheck: 'refuse' | 'warn';
  /** Plugin modules to load, by path (relative to the config file) or package name. */
  plugins: string[];
  /** Hooks kinstall skips because they redo one of its steps, to run anyway (file names). */
  runRedundant: string[];
  /**
   * Under a --root other than /, how the target's hooks run: `run` (default) inside the target
   * (chroot, with /proc, /sys and /dev), `host` on the host with paths under the root, `skip` not at all.
   */
  targetHooks: 'run' | 'host' | 'skip';
  /**
   * Secure Boot signing (sbsign): the key (a file, or a PKCS#11 URI) and its certificate. Both or
   * neither; unset, nothing is signed.
   */
  secureBootKey?: string;
  secureBootCert?: string;
  /** Remove the oldest kernels when the boot dir or ESP lacks room for the new one (--make-room). */
  makeRoom: boolean;
  /**
   * Install new kernels as trials (--try): booted once, the previous default kept until `kinstall
   * confirm`. Undefined (the default): on only where a confirm unit is enabled in the target.
   */
  tryOnce?: boolean;
  /** Frozen option sections, by plugin name. */
  pluginOptions: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/** What the CLI contributes: flags win over everything. */
export interface SettingsOverrides {
  layout?: string;
  initrdGenerator?: string;
  bootDir?: string;
  bootRoot?: string;
  cmdline?: string;
  keep?: number;
  makeRoom?: boolean;
  tryOnce?: boolean;
  configFile?: string;
}

/** The merged values before validation, by setting name. */
export type RawSettings = Partial<Omit<Settings, 'pluginOptions'>>;

const installConfKeys: Record<string, keyof RawSettings> = {
  layout: 'layout',
  initrd_generator: 'initrdGenerator',
  uki_generator: 'ukiGenerator',
  BOOT_ROOT: 'bootRoot',
  MACHINE_ID: 'machineId',
};

const envKeys: Record<string, keyof RawSettings> = {
  INSTALLKERNEL_LAYOUT: 'layout',
  INSTALLKERNEL_INITRD_GENERATOR: 'initrdGenerator',
  INSTALLKERNEL_UKI_GENERATOR: 'ukiGenerator',
  KINSTALL_LAYOUT: 'layout',
  KINSTALL_INITRAMFS: 'initrdGenerator',
  KINSTALL_BOOT_DIR: 'bootDir',
  KINSTALL_ESP: 'bootRoot',
  KINSTALL_CMDLINE: 'cmdline',
  KINSTALL_KEEP: 'keep',
  KINSTALL_LOCK_TIMEOUT: 'lockTimeout',
  KINSTALL_BOOTABILITY_CHECK: 'bootabilityCheck',
  KINSTALL_TARGET_HOOKS: 'targetHooks',
  KINSTALL_MAKE_ROOM: 'makeRoom',
  KINSTALL_TRY_ONCE: 'tryOnce',
  // Gentoo's secureboot.eclass names these: a make.conf that signs dist-kernels signs kinstall's files too.
  SECUREBOOT_SIGN_KEY: 'secureBootKey',
  SECUREBOOT_SIGN_CERT: 'secureBootCert',
  BOOT_ROOT: 'bootRoot',
};

async function loadConfigFile(configFile: string | undefined, under: (p: string) => string) {
  const searchPlaces = [
    'config.json',
    'config.yaml',
    'config.yml',
    'config.js',
    'config.mjs',
    'kinstall.config.js',
    'kinstall.config.mjs',
    'kinstall.config.json',
    '.kinstallrc',
    '.kinstallrc.json',
    '.kinstallrc.yaml',
  ];
  // Checked before cosmiconfig reads them: loading a .js config runs it.
  const candidates = configFile ? [configFile] : searchPlaces.map((name) => path.join(under('/etc/kinstall'), name));
  for (const file of candidates) await assertTrusted(file, 'config file');
  // Most machines have no config file: cosmiconfig (and its YAML and JS loaders) is loaded only for one.
  if (!configFile && !(await Promise.all(candidates.map(pathExists))).some(Boolean)) return null;
  try {
    const { cosmiconfig, defaultLoaders } = await import('./config-explorer.js');
    // JSON.parse first: cosmiconfig's own JSON loader (parse-json, with a code frame for a syntax
    // error) takes milliseconds to load; it still reads a file JSON.parse refuses, for its message.
    const json = (file: string, content: string): unknown => {
      try {
        return JSON.parse(content) as unknown;
      } catch {
        return defaultLoaders['.json'](file, content);
      }
    };
    const explorer = cosmiconfig('kinstall', { searchStrategy: 'none', searchPlaces, loaders: { '.json': json } });
    if (configFile) return await explorer.load(configFile);
    return await explorer.search(under('/etc/kinstall'));
  } catch (error) {
    throw new KinstallError('ECONFIG', {
      what: `cannot read ${configFile ?? under('/etc/kinstall')}: ${errorMessage(error, { firstLine: true })}`,
    });
  }
}

/** Where a plugin named by package resolves, as import() will load it; undefined when it does not. */
function resolvePackage(name: string): string | undefined {
  try {
    // One rule for every start (the bundle has no import.meta.resolve): require's resolution from kinstall's own package.
    const url = pathToFileURL(createRequire(import.meta.url).resolve(name)).href;
    return url.startsWith('file:') ? fileURLToPath(url) : undefined;
  } catch {
    return undefined;
  }
}

/** Loads third-party plugins named by the config file into the registry. */
async function loadPlugins(names: string[], baseDir: string, registry: PluginRegistry, problems: string[]) {
  for (const name of names) {
    const byPath = name.startsWith('.') || name.startsWith('/');
    const spec = byPath ? pathToFileURL(path.resolve(baseDir, name)).href : name;
    try {
      // A plugin is code run as root: its file, and for a package the directory holding it, must be root's.
      const file = byPath ? path.resolve(baseDir, name) : resolvePackage(name);
      if (!file) {
        // Nothing is run that could not be checked first.
        problems.push(
          `plugin ${name}: no such package where kinstall looks for it (${name} must resolve from kinstall's own package)`,
        );
        continue;
      }
      await assertTrusted(file, 'plugin');
      if (!byPath) await assertTrusted(path.dirname(file), 'plugin directory');
      const mod = (await import(spec)) as { default?: unknown };
      const exported = mod.default ?? mod;
      const items = Array.isArray(exported) ? exported : [exported];
      for (const item of items as Array<Partial<Layout & InitramfsGenerator>>) {
        if (typeof item.plan === 'function' && typeof item.name === 'string') registry.layouts.push(item as Layout);
        else if (typeof item.generate === 'function' && typeof item.name === 'string')
          registry.generators.push(item as InitramfsGenerator);
        else problems.push(`plugin ${name}: exports neither a layout (name, plan) nor a generator (name, generate)`);
      }
    } catch (error) {
      if (error instanceof KinstallError) throw error;
      problems.push(`plugin ${name}: cannot load (${errorMessage(error, { firstLine: true })})`);
    }
  }
}

export async function loadSettings(
  under: (p: string) => string,
  env: Record<string, string | undefined>,
  overrides: SettingsOverrides,
  registry: PluginRegistry,
): Promise<Settings> {
  const problems: string[] = [];
  const raw: RawSettings = {};

  const conf = await readInstallConfChain(under);
  for (const file of conf.files) await assertTrusted(file, 'config file');
  problems.push(...conf.problems);
  for (const [key, value] of Object.entries(conf.values)) {
    const setting = installConfKeys[key];
    if (setting) (raw as Record<string, unknown>)[setting] = value;
  }

  const pluginOptions: Record<string, Record<string, unknown>> = {};
  const configFile = overrides.configFile ?? env.KINSTALL_CONFIG;
  const found = await loadConfigFile(configFile, under);
  if (found && !found.isEmpty) {
    const file = found.filepath;
    const config: unknown = found.config;
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      problems.push(`${file}: the configuration must be an object`);
    } else {
      const plugins = (config as Record<string, unknown>).plugins;
      if (Array.isArray(plugins) && plugins.every((p) => typeof p === 'string')) {
        await loadPlugins(plugins, path.dirname(file), registry, problems);
      }
      checkConfigKeys(config as Record<string, unknown>, file, registry, { raw, pluginOptions, problems });
    }
  }

  for (const [name, setting] of Object.entries(envKeys)) {
    const value = env[name];
    if (value !== undefined && value !== '') (raw as Record<string, unknown>)[setting] = value;
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined && key !== 'configFile') (raw as Record<string, unknown>)[key] = value;
  }

  return validateSettings(raw, pluginOptions, registry, problems);
}
