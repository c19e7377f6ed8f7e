// Retention: keep the newest N kernels, removing older ones through the remove pipeline; never
// the running kernel, never the one just installed.
import type { Context } from './context.js';
import { installedVersions } from './list.js';
import { removeKernel, type RemoveResult } from './remove.js';

export interface PruneInput {
  keep: number;
  /** Versions never removed (the one just installed). */
  protect: string[];
}

export interface PruneResult {
  keep: number;
  kept: string[];
  removed: RemoveResult[];
  dryRun: boolean;
}

/** Which versions (sorted oldest first) a prune would remove, oldest first. */
export function selectForPruning(versions: string[], keep: number, protectedVersions: string[]): string[] {
  const excess = versions.length - keep;
  if (excess <= 0) return [];
  // The newest is kept whatever N says: it is the kernel a user is about to boot.
  const kept = new Set([...protectedVersions, ...versions.slice(-1)]);
  return versions.filter((v) => !kept.has(v)).slice(0, excess);
}

export async function pruneKernels(ctx: Context, input: PruneInput): Promise<PruneResult> {
  const versions = await installedVersions(ctx);
  const protectedVersions = [...input.protect, ...(ctx.isHostRoot ? [ctx.runningRelease] : [])];
  const doomed = selectForPruning(versions, input.keep, protectedVersions);
  const removed: RemoveResult[] = [];
  for (const version of doomed) {
    ctx.log.info(`keep=${input.keep}: removing ${version}`);
    removed.push(await removeKernel(ctx, { version, keepModules: false }));
  }
  return { keep: input.keep, kept: versions.filter((v) => !doomed.includes(v)), removed, dryRun: ctx.request.dryRun };
}
