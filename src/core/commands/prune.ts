// Retention: keep the newest N kernels, removing older ones through the remove pipeline, all in one
// transaction (a failure restores every one of them); never the running kernel, never the one just
// installed.
import type { Context } from '../context.js';
import { ExitCode, isKinstallError, KinstallError } from '../errors.js';
import { Listings } from '../system/listings.js';
import { installedVersions } from './list.js';
import { removeKernels, type RemoveResult } from './remove.js';

export interface PruneInput {
  keep: number;
  /** Versions never removed (the one just installed). */
  protect: string[];
  /** The package's own hooks.d, for the removals' prerm/postrm hooks. */
  shippedHooksDir?: string;
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

/** The installed versions (oldest first) and those never removed: `protect`, and the running kernel on the real root. */
async function pruneSubjects(
  ctx: Context,
  protect: string[],
  listings: Listings,
): Promise<{ versions: string[]; protectedVersions: string[] }> {
  return {
    versions: await installedVersions(ctx, listings),
    protectedVersions: [...protect, ...(ctx.isHostRoot ? [ctx.runningRelease] : [])],
  };
}

/** Every version prune's rules allow to remove, oldest first (what `--make-room` may take). */
export async function removableVersions(ctx: Context, protect: string[]): Promise<string[]> {
  const { versions, protectedVersions } = await pruneSubjects(ctx, protect, new Listings(ctx));
  return selectForPruning(versions, 1, protectedVersions);
}

export async function pruneKernels(ctx: Context, input: PruneInput): Promise<PruneResult> {
  // One look at the boot dir and ESP for the choice and for every removal's resolve step.
  const listings = new Listings(ctx);
  const { versions, protectedVersions } = await pruneSubjects(ctx, input.protect, listings);
  const doomed = selectForPruning(versions, input.keep, protectedVersions);
  const kept = versions.filter((v) => !doomed.includes(v));
  if (doomed.length === 0) return { keep: input.keep, kept, removed: [], dryRun: ctx.request.dryRun };
  ctx.log.info(`keep=${input.keep}: removing ${doomed.join(', ')}`);
  try {
    const removed = await removeKernels(ctx, doomed, false, input.shippedHooksDir, listings);
    return { keep: input.keep, kept, removed, dryRun: ctx.request.dryRun };
  } catch (error) {
    // Rolled back as one transaction: say so, so no one goes looking for a half-pruned boot dir.
    if (!isKinstallError(error) || error.exitCode !== ExitCode.rolledBack) throw error;
    throw new KinstallError(
      error.code,
      error.args,
      [...error.details, `no kernel was removed: ${doomed.join(', ')} are all still installed`],
      { cause: error.cause },
    );
  }
}
