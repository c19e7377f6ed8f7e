// `kinstall remove`: the layout's removal plan through the same transaction, the bootloader
// updated, then the neutral location and modules deleted unless --keep-modules.
import { rm, stat } from 'node:fs/promises';
import type { Context } from './context.js';
import { KinstallError } from './errors.js';
import { appendHistory } from './history.js';
import { runPipeline, type PipelineState, type Step } from './pipeline.js';
import { chooseLayout } from './select.js';
import { Transaction } from './transaction.js';
import { describePlan, type Layout, type Plan } from './types.js';
import { checkVersionString } from './versions.js';

export interface RemoveInput {
  version: string;
  keepModules: boolean;
}

export interface RemoveResult {
  version: string;
  layout: string;
  removed: string[];
  modulesRemoved: boolean;
  dryRun: boolean;
}

interface RemoveState extends PipelineState {
  input: RemoveInput;
  layout: Layout;
  plan: Plan;
  hasNeutral: boolean;
}

async function resolve(state: RemoveState): Promise<void> {
  const { ctx, input } = state;
  checkVersionString(input.version);
  if (ctx.isHostRoot && input.version === ctx.runningRelease && !ctx.request.force) {
    throw new KinstallError('ERUNNING', { version: input.version });
  }
  state.layout = await chooseLayout(ctx);
  state.hasNeutral = await stat(ctx.paths.moduleDir(input.version)).then((s) => s.isDirectory(), () => false);
}

async function plan(state: RemoveState): Promise<void> {
  const { ctx, input } = state;
  state.plan = await state.layout.planRemove(ctx, input.version);
  const empty = state.plan.remove.length + state.plan.place.length + state.plan.write.length + state.plan.link.length === 0;
  if (empty && !state.hasNeutral) {
    throw new KinstallError('ENOTINSTALLED', { version: input.version, layout: state.layout.name });
  }
  for (const line of describePlan(state.plan)) ctx.log.info(line);
  if (state.hasNeutral && !input.keepModules) ctx.log.info(`then delete ${ctx.paths.moduleDir(input.version)}`);
}

const removeSteps: Step<RemoveState>[] = [
  { name: 'resolve', run: resolve },
  { name: 'plan', run: plan },
  { name: 'commit', mutates: true, run: (s) => s.txn.apply(s.plan) },
  { name: 'deactivate', mutates: true, run: async (s) => s.layout.deactivate?.(s.ctx, s.input.version, s.plan, s.txn) },
];

export async function removeKernel(ctx: Context, input: RemoveInput): Promise<RemoveResult> {
  const state = { ctx, input, txn: new Transaction(ctx.log) } as RemoveState;
  await runPipeline(removeSteps, state);
  const removeModules = state.hasNeutral && !input.keepModules;
  if (!ctx.request.dryRun) {
    await state.txn.finish();
    if (removeModules) await rm(ctx.paths.moduleDir(input.version), { recursive: true, force: true });
    await appendHistory(ctx, { version: input.version, layout: state.layout.name, initrdGenerator: '-', installed: state.plan.remove }, 'remove');
    ctx.log.info(`removed ${input.version} (${state.layout.name})`);
  }
  return { version: input.version, layout: state.layout.name, removed: state.plan.remove, modulesRemoved: removeModules, dryRun: ctx.request.dryRun };
}
