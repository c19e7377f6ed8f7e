// The context: request, settings, logger, exec and paths under --root, built once at the entry
// point and passed down. Nothing else reads process.env, process.argv or host paths.
import os from 'node:os';
import path from 'node:path';
import { createExec, type Exec } from './exec.js';
import { createLogger, type Logger } from './logger.js';
import { createPaths, type Paths } from './paths.js';
import { loadSettings, type Settings, type SettingsOverrides } from './settings.js';
import type { PluginRegistry } from './types.js';

/** What the user asked for, as the CLI parsed it. */
export interface Request {
  root: string;
  dryRun: boolean;
  verbose: boolean;
  json: boolean;
  force: boolean;
  overrides: SettingsOverrides;
  /** The working directory relative paths were given against. */
  cwd: string;
  /** Long steps may draw one updating progress line on stderr (a terminal, no --json). */
  progress?: boolean;
  /** `auto` (default): depmod only when the module index is missing or stale; `always`: every install. */
  depmod?: 'auto' | 'always';
}

export interface Context {
  request: Request;
  settings: Settings;
  paths: Paths;
  exec: Exec;
  log: Logger;
  registry: PluginRegistry;
  /** A snapshot of the environment kinstall was started with (hooks and tools inherit PATH from it). */
  env: Readonly<Record<string, string | undefined>>;
  /** `uname -r` of the running kernel. */
  runningRelease: string;
  /** True when --root is the real root: only then may host state (running kernel, /proc) be consulted. */
  isHostRoot: boolean;
}

export interface ContextInputs {
  request: Request;
  registry: PluginRegistry;
  env: Record<string, string | undefined>;
  log?: Logger;
}

/** The root a request names (--root, against the directory it was given in). */
export const requestRoot = (request: Pick<Request, 'cwd' | 'root'>): string => path.resolve(request.cwd, request.root);

export async function createContext(inputs: ContextInputs): Promise<Context> {
  const { request, env } = inputs;
  const log = inputs.log ?? createLogger({ verbose: request.verbose, quiet: request.json && !request.verbose });
  const root = requestRoot(request);
  // Plugins loaded from the config file join a copy, so one registry can serve many contexts.
  const registry: PluginRegistry = { layouts: [...inputs.registry.layouts], generators: [...inputs.registry.generators] };
  const rootPaths = createPaths(root, '/boot');
  const settings = await loadSettings(rootPaths.under, env, request.overrides, registry);
  return {
    request,
    settings,
    paths: createPaths(root, settings.bootDir),
    exec: createExec(log, env, request.dryRun),
    log,
    registry,
    env: Object.freeze({ ...env }),
    runningRelease: os.release(),
    isHostRoot: root === '/',
  };
}

/** A logger scoped to one step or plugin, so every line says who wrote it. */
export function scopedLog(ctx: Context, scope: string): Logger {
  return ctx.log.child({ scope });
}
