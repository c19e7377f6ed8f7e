// `kinstall remove`: the layout's removal plan through the same transaction, the bootloader
// updated, then the neutral location and modules deleted unless --keep-modules.
import { rm, stat } from 'node:fs/promises';
import type { Context } from './context.js';
import { KinstallError } from './errors.js';
import { appendHistory } from './history.js';
import { runPipeline, type PipelineState, type Step } from './pipeline.js';
import { layoutsHolding } from './select.js';
import { transactionFor } from './recover.js';
import { describePlan, emptyPlan, type Layout, type Plan } from './types.js';
import { checkVersionString } from './versions.js';

export interface RemoveInput {
  version: string;
  keepModules: boolean;
}

export interface RemoveResult {
  version: string;
  /** The layouts it was removed from, joined with "+" (most often one). */
  layout: string;
  removed: string[];
  modulesRemoved: boolean;
  dryRun: boolean;
}

interface RemoveState extends PipelineState {
  input: RemoveInput;
  /** Every layout holding the version, each with its removal plan. */
  targets: Array<{ layout: Layout; plan: Plan }>;
  hasNeutral: boolean;
}

async function resolve(state: RemoveState): Promise<void> {
  const { ctx, input } = state;
  checkVersionString(input.version);
  if (ctx.isHostRoot && input.version === ctx.runningRelease && !ctx.request.force) {
    throw new KinstallError('ERUNNING', { version: input.version });
  }
  state.targets = (await layoutsHolding(ctx, input.version)).map((layout) => ({ layout, plan: emptyPlan() }));
  state.hasNeutral = await stat(ctx.paths.moduleDir(input.version)).then((s) => s.isDirectory(), () => false);
}

async function plan(state: RemoveState): Promise<void> {
  const { ctx, input } = state;
  for (const target of state.targets) target.plan = await target.layout.planRemove(ctx, input.version);
  const empty = state.targets.every(({ plan: p }) => p.remove.length + p.place.length + p.write.length + p.link.length === 0);
  if (empty && !state.hasNeutral) {
    throw new KinstallError('ENOTINSTALLED', { version: input.version, layout: layoutNames(state) });
  }
  for (const { plan: p } of state.targets) for (const line of describePlan(p)) ctx.log.info(line);
  if (state.hasNeutral && !input.keepModules) ctx.log.info(`then delete ${ctx.paths.moduleDir(input.version)}`);
}

const removeSteps: Step<RemoveState>[] = [
  { name: 'resolve', run: resolve },
  { name: 'plan', run: plan },
  {
    name: 'commit',
    mutates: true,
    run: async (s) => {
      for (const { plan: p } of s.targets) await s.txn.apply(p);
    },
  },
  {
    name: 'deactivate',
    mutates: true,
    run: async (s) => {
      for (const { layout, plan: p } of s.targets) await layout.deactivate?.(s.ctx, s.input.version, p, s.txn.forLayout(layout.name));
      s.txn.checkpoint('activated');
    },
  },
];

const layoutNames = (state: RemoveState) => state.targets.map((t) => t.layout.name).join('+');
const removedFiles = (state: RemoveState) => [...new Set(state.targets.flatMap((t) => t.plan.remove))];

export async function removeKernel(ctx: Context, input: RemoveInput): Promise<RemoveResult> {
  const state = { ctx, input, txn: transactionFor(ctx) } as RemoveState;
  await runPipeline(removeSteps, state);
  const removeModules = state.hasNeutral && !input.keepModules;
  if (!ctx.request.dryRun) {
    await state.txn.finish();
    if (removeModules) await rm(ctx.paths.moduleDir(input.version), { recursive: true, force: true });
    await appendHistory(ctx, { version: input.version, layout: layoutNames(state), initrdGenerator: '-', installed: removedFiles(state) }, 'remove');
    ctx.log.info(`removed ${input.version} (${layoutNames(state)})`);
  }
  return {
    version: input.version,
    layout: layoutNames(state),
    removed: removedFiles(state),
    modulesRemoved: removeModules,
    dryRun: ctx.request.dryRun,
  };
}
