// A kernel's build configuration (`.config`, `include/config/auto.conf`, the neutral location's
// `config`): read into option → value, where an option kbuild left unset reads as `n`.
import { readFile } from '../quick-fs.js';
import path from 'node:path';
import { firstFile } from '../fs.js';
import type { KernelConfig } from '../types.js';

/**
 * `CONFIG_X=y|m|"text"|123` and `# CONFIG_X is not set`; option names without the `CONFIG_` prefix.
 * Quoted strings keep their content without the quotes. Any other line is ignored.
 */
export function parseKernelConfig(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const unset = /^# CONFIG_([A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset?.[1]) {
      values.set(unset[1], 'n');
      continue;
    }
    const set = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (!set?.[1]) continue;
    const value = set[2] ?? '';
    values.set(set[1], value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value);
  }
  return values;
}

/** `y`, `m` or `n` (absent options are `n`, as kbuild treats them); other values as they are. */
export function configValue(config: KernelConfig, option: string): string {
  return config.values.get(option) ?? 'n';
}

export async function readKernelConfig(file: string): Promise<KernelConfig> {
  return { file, values: parseKernelConfig(await readFile(file, 'utf8')) };
}

/**
 * The config of the kernel being installed: the one found with its image (given, beside it, or at
 * the top of its build tree), else the build tree's include/config/auto.conf (a tree whose
 * .config was removed), else the one already in the neutral location. Undefined: a bare image.
 */
export async function findKernelConfig(candidates: Array<string | undefined>, image: string): Promise<string | undefined> {
  const imageDir = path.dirname(image);
  const buildTop = path.resolve(imageDir, '../../..');
  const inBuildTree = path.basename(imageDir) === 'boot' && path.basename(path.resolve(imageDir, '../..')) === 'arch';
  return firstFile([
    ...candidates.filter((c): c is string => c !== undefined),
    ...(inBuildTree ? [path.join(buildTop, 'include/config/auto.conf')] : []),
  ]);
}
