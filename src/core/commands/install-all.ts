// installkernel --all: every staged kernel installed, one transaction at a time in version order
// (one journal, one lock), while up to --jobs initramfs generations run ahead of their kernel's turn
// in private staging areas. The target changes only in the transactions.
import os from 'node:os';
import type { Context } from '../context.js';
import { throwIfInterrupted } from '../interrupt.js';
import { createStagingArea } from '../pipeline/pipeline.js';
import { decideAhead, type InitramfsAhead } from './add-ahead.js';
import { installKernel, type InstallResult } from './add.js';

export interface InstallAllOptions {
  /** How many initramfs generations may run at once; 1 installs one kernel after another, as before. */
  jobs: number;
  shippedHooksDir?: string;
  onInstalled: (result: InstallResult) => void;
  onFailed: (version: string, error: unknown) => void;
}

/** The default --jobs: the cores this process may use. */
export const defaultJobs = (): number => os.availableParallelism();

type Slots = <T>(task: () => Promise<T>, urgent?: boolean) => Promise<T>;

/** At most `size` tasks at once; an urgent one (the kernel whose turn it is) goes before those queued. */
function createSlots(size: number): Slots {
  let free = size;
  const waiting: Array<() => void> = [];
  const acquire = (urgent: boolean) =>
    new Promise<void>((resolve) => {
      if (free > 0) {
        free -= 1;
        resolve();
      } else if (urgent) waiting.unshift(resolve);
      else waiting.push(resolve);
    });
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else free += 1;
  };
  return async (task, urgent = false) => {
    await acquire(urgent);
    try {
      return await task();
    } finally {
      release();
    }
  };
}

interface Started extends InitramfsAhead {
  cleanup: () => Promise<void>;
}

/**
 * Looks at one kernel and, when its initramfs may be made before its turn, starts making it in a
 * slot. Progress is plain lines (several generations cannot share one redrawn line).
 */
async function startAhead(ctx: Context, version: string, slots: Slots, shippedHooksDir?: string): Promise<Started | undefined> {
  const area = await createStagingArea(ctx);
  const decision = await decideAhead(ctx, version, area.path, shippedHooksDir);
  if ('reason' in decision) {
    ctx.log.debug(`${version}: initramfs not made ahead, it comes in its turn: ${decision.reason}`);
    await area.cleanup();
    return undefined;
  }
  const genCtx: Context = { ...ctx, request: { ...ctx.request, progress: false }, log: ctx.log.child({ scope: version }) };
  // One still queued when a signal came never starts (a running one is stopped by exec).
  const made = slots(async () => {
    throwIfInterrupted();
    await decision.generate(genCtx);
  });
  // Its failure is reported when the kernel's turn comes (its initramfs step), not before.
  made.catch(() => undefined);
  return { stagingArea: area.path, made, cleanup: () => area.cleanup() };
}

/** Every kernel in `versions`, in that order; a failed one is reported and the others go on. */
export async function installAllKernels(ctx: Context, versions: string[], options: InstallAllOptions): Promise<void> {
  const { jobs, shippedHooksDir } = options;
  const parallel = jobs > 1 && !ctx.request.dryRun;
  const slots = createSlots(jobs);
  const aheads = new Map<string, Started>();
  try {
    if (parallel) {
      ctx.log.debug(`installing ${versions.length} kernel(s), up to ${jobs} initramfs generations at once`);
      for (const version of versions) {
        const started = await startAhead(ctx, version, slots, shippedHooksDir);
        if (started) aheads.set(version, started);
      }
    }
    for (const version of versions) {
      const ahead = aheads.get(version);
      try {
        const result = await installKernel(ctx, {
          version,
          initrds: [],
          shippedHooksDir,
          ahead,
          initramfsSlot: parallel ? (generate) => slots(generate, true) : undefined,
        });
        options.onInstalled(result);
      } catch (error) {
        options.onFailed(version, error);
      } finally {
        await ahead?.made.catch(() => undefined);
        await ahead?.cleanup();
        aheads.delete(version);
      }
    }
  } finally {
    // Nothing made ahead outlives the run (or the lock): wait for it, then remove its staging area.
    for (const ahead of aheads.values()) {
      await ahead.made.catch(() => undefined);
      await ahead.cleanup();
    }
  }
}
