// An initramfs made ahead of its kernel's turn (installkernel --all --jobs N): the look that decides
// whether a kernel's initramfs may be generated before its transaction runs, the generation into
// its own staging area, and the initramfs step's taking of it. The target is never changed here.
import path from 'node:path';
import { isFile } from '../fs.js';
import type { Context } from '../context.js';
import { errorMessage } from '../errors.js';
import { createLogger } from '../logger.js';
import { staleIndexReason } from '../system/depmod-index.js';
import { holdsModules } from '../system/neutral-location.js';
import { Transaction } from '../transaction/transaction.js';
import { emptyPlan } from '../types.js';
import { findHooks } from './add-hooks.js';
import { initramfs, OWN_INITRD, resolve, resolvedOf, type InstallState } from './add-steps.js';

/** A kernel's initramfs being generated ahead, into the staging area its install then uses. */
export interface InitramfsAhead {
  stagingArea: string;
  /** Settles when the generator has finished; rejects with its failure. */
  made: Promise<void>;
}

/** What the look decided: generate now (with what), or why not. */
export type AheadDecision = { generate: (ctx: Context) => Promise<void> } | { reason: string };

/**
 * A context for the look: its lines (resolve's "installing …") would repeat the install's own, so
 * they show only under --verbose, marked as the look-ahead's.
 */
function lookContext(ctx: Context, version: string): Context {
  const log = createLogger({ verbose: ctx.request.verbose });
  log.silent = !ctx.request.verbose;
  return { ...ctx, log: log.child({ scope: `look-ahead ${version}` }) };
}

/**
 * Whether the initramfs of a staged kernel may be made before its turn, and how. Only when the
 * steps the pipeline runs before its initramfs change nothing it is made from: no files to place
 * into the neutral location, no depmod to run (a stale index), no preinst hook (DKMS may add
 * modules that belong in it). Anything else, including a failure to look, is the sequential path's.
 */
export async function decideAhead(
  ctx: Context,
  version: string,
  stagingArea: string,
  shippedHooksDir?: string,
): Promise<AheadDecision> {
  const look = lookContext(ctx, version);
  const state: InstallState = {
    ctx: look,
    input: { version, initrds: [], shippedHooksDir },
    // Never applied to: resolve and the hooks step only read.
    txn: new Transaction(look.log),
    stagingArea,
    staged: [],
    plan: emptyPlan(),
  };
  try {
    await resolve(state);
    await findHooks(state);
  } catch (error) {
    return { reason: `its install fails before the initramfs (${errorMessage(error, { firstLine: true })})` };
  }
  const { kernel, generator, sources, layout } = resolvedOf(state);
  const initrd = kernel.initrd;
  if (!generator || !initrd) return { reason: `kinstall generates no initramfs for it (${kernel.initrdGenerator})` };
  if (sources) return { reason: 'its files are placed into the neutral location first' };
  const hooks = state.hookOrder?.preinst.run ?? [];
  if (hooks.length > 0) return { reason: `preinst hook(s) run before its initramfs: ${hooks.map((h) => h.name).join(', ')}` };
  if (await holdsModules(kernel.moduleDir)) {
    const stale = ctx.request.depmod === 'always' ? '--depmod always' : await staleIndexReason(kernel.moduleDir, ctx.exec);
    if (stale !== undefined) return { reason: `depmod runs before its initramfs (${stale})` };
  }
  if (await layout.buildsInitramfs?.(ctx, kernel)) return { reason: `layout ${layout.name} builds its own` };
  return {
    generate: async (genCtx) => {
      await generator.generate(genCtx, kernel, initrd);
      if (!(await isFile(initrd))) throw new Error(`${generator.name} wrote no initramfs to ${initrd}`);
    },
  };
}

/**
 * The initramfs step's side: the one made ahead is the kernel's when the steps before it, run now
 * in its transaction, still changed nothing it was made from; else it is dropped and made again.
 * Waits for the generation either way (it writes into this install's staging area); its failure
 * is this kernel's. Returns whether the initramfs is in place.
 */
async function takeInitramfsMadeAhead(state: InstallState): Promise<boolean> {
  const ahead = state.input.ahead;
  if (!ahead) return false;
  const { ctx } = state;
  const { kernel } = resolvedOf(state);
  const changed = [
    state.staged.length > 0 ? 'files were placed into the neutral location' : '',
    state.indexRebuilt ? 'depmod rebuilt the module index' : '',
    (state.preinst?.ran.length ?? 0) > 0 ? 'preinst hooks ran' : '',
    kernel.initrd !== path.join(ahead.stagingArea, OWN_INITRD) ? 'the initramfs goes elsewhere' : '',
  ].filter(Boolean);
  if (changed.length > 0) {
    await ahead.made.catch(() => undefined);
    ctx.log.debug(`the initramfs of ${kernel.version} made ahead is not used (${changed.join('; ')}): generating it again`);
    return false;
  }
  await ahead.made;
  ctx.log.info(`initramfs for ${kernel.version} generated ahead, in parallel with the other kernels`);
  return true;
}

/** The initramfs step: the one made ahead when it is still this kernel's, else generated now. */
export async function initramfsMadeAheadOrNow(state: InstallState): Promise<void> {
  if (!(await takeInitramfsMadeAhead(state))) await initramfs(state);
}
