// An in-process Context on a test root, for unit tests of core modules and plugins.
import { builtinPlugins } from '../../plugins/index.js';
import { createContext, type Context } from '../../src/core/context.js';
import { createLogger } from '../../src/core/logger.js';
import type { SettingsOverrides } from '../../src/core/settings.js';

export async function testContext(
  root: string,
  overrides: SettingsOverrides = {},
  env: Record<string, string> = {},
): Promise<Context> {
  return createContext({
    request: { root, dryRun: false, verbose: false, json: false, force: false, overrides, cwd: root },
    registry: builtinPlugins(),
    env: { PATH: process.env.PATH, ...env },
    log: createLogger({ verbose: false, quiet: true }),
  });
}
