// Preflight: every check that can fail before anything changes, all collected and reported together.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from './context.js';
import { KinstallError } from './errors.js';
import type { InitramfsGenerator, Layout, StagedKernel } from './types.js';

export interface PreflightSubject {
  layout: Layout;
  generator?: InitramfsGenerator;
  kernel: StagedKernel;
}

async function missingTools(ctx: Context, tools: string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const tool of [...new Set(tools)]) {
    if (!(await ctx.exec.which(tool))) problems.push(`${tool} is not installed (not found on PATH)`);
  }
  return problems;
}

export async function runPreflight(ctx: Context, subject: PreflightSubject): Promise<void> {
  const { layout, generator, kernel } = subject;
  const hasModules = await stat(path.join(kernel.moduleDir, 'modules.order')).then(() => true, () => false);
  const tools = [
    ...(hasModules ? ['depmod'] : []),
    ...(generator?.requiredTools?.(ctx) ?? []),
    ...(layout.requiredTools?.(ctx) ?? []),
  ];
  const problems = [...(await missingTools(ctx, tools)), ...((await layout.preflight?.(ctx, kernel)) ?? [])];
  if (problems.length > 0) {
    const summary = problems.length === 1 ? (problems[0] ?? '') : `${problems[0]} (and ${problems.length - 1} more)`;
    throw new KinstallError('EPREFLIGHT', { count: String(problems.length), summary }, problems);
  }
}

/** A shared check for layouts that write into a directory: it exists, is a directory, is writable. */
export async function checkWritableDir(dir: string, what: string): Promise<string[]> {
  const { access, constants } = await import('node:fs/promises');
  const info = await stat(dir).catch(() => undefined);
  if (!info) return [`${what} ${dir} does not exist (create it, or mount the boot partition)`];
  if (!info.isDirectory()) return [`${what} ${dir} is not a directory`];
  if (!(await access(dir, constants.W_OK).then(() => true, () => false))) return [`${what} ${dir} is not writable (mounted read-only?)`];
  return [];
}
