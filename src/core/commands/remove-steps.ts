// The steps of `kinstall remove` (remove.ts holds their table), over one removal state: which
// layouts hold each version, their plans, the checks, the commit, the bootloader, the hooks.
import path from 'node:path';
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { isDirectory } from '../fs.js';
import { discoverHooks, type HookOrder } from '../pipeline/hooks/discover.js';
import { emptyOutcome, runHooks, type HookOutcome } from '../pipeline/hooks/run.js';
import { checkTargetHooks } from '../pipeline/hooks/target.js';
import { type PipelineState } from '../pipeline/pipeline.js';
import {
  checkAreasInsideRoot,
  checkPlanTargets,
  missingTools,
  planTargetProblems,
  throwProblems,
} from '../pipeline/preflight.js';
import { layoutsHolding } from '../pipeline/select.js';
import { readTrialRecord, TRIAL_RECORD } from '../pipeline/trial.js';
import { describePlan, emptyPlan, type Layout, type Plan } from '../types.js';
import { findPackageOwned, type PackageOwned } from '../system/package-owned.js';
import { checkVersionString } from '../system/versions.js';
import { Listings } from '../system/listings.js';

export interface Removal {
  version: string;
  targets: Array<{ layout: Layout; plan: Plan }>;
  hasNeutral: boolean;
  /** Files a package manager owns in the neutral location: they stay, its removal deletes them. */
  ownedModules?: PackageOwned;
  /** The image the removal takes away, as Debian's prerm.d/postrm.d hooks get it (/boot/vmlinuz-KVER). */
  image: string;
}

export interface RemoveState extends PipelineState {
  versions: string[];
  keepModules: boolean;
  shippedHooksDir?: string;
  /** A private (0700) scratch dir hooks see as KINSTALL_STAGING_AREA. */
  stagingArea: string;
  removals: Removal[];
  /** The layouts' listings as resolve reads them, before anything changes. */
  listings: Listings;
  /** What a package manager owns, by path asked about (undefined: nothing): its databases read once per question. */
  owned: Map<string, PackageOwned | undefined>;
  /** prerm and postrm hooks, found once in preflight. */
  hookOrder?: { prerm: HookOrder; postrm: HookOrder };
  prerm: HookOutcome;
  postrm: HookOutcome;
}

export async function resolve(state: RemoveState): Promise<void> {
  const { ctx } = state;
  state.removals = [];
  for (const version of state.versions) {
    checkVersionString(version);
    if (ctx.isHostRoot && version === ctx.runningRelease && !ctx.request.force) {
      throw new KinstallError('ERUNNING', { version });
    }
    const targets = (await layoutsHolding(ctx, version, state.listings)).map((layout) => ({ layout, plan: emptyPlan() }));
    const hasNeutral = await isDirectory(ctx.paths.moduleDir(version));
    state.removals.push({ version, targets, hasNeutral, image: await installedImage(state.listings, version, targets) });
  }
  const neutral = state.removals.filter((r) => r.hasNeutral);
  const owned = await packageOwned(
    state,
    neutral.map((r) => ctx.paths.moduleDir(r.version)),
  );
  for (const removal of neutral) removal.ownedModules = owned.find((o) => o.path === ctx.paths.moduleDir(removal.version));
}

/**
 * Which of the paths a package manager owns. The databases are read once for all paths not asked
 * about before (a removal of 97 kernels reads them twice, not once per kernel and plan).
 */
async function packageOwned(state: RemoveState, paths: string[]): Promise<PackageOwned[]> {
  const unknown = [...new Set(paths.filter((p) => !state.owned.has(p)))];
  if (unknown.length > 0) {
    const found = await findPackageOwned(state.ctx.paths, unknown);
    for (const p of unknown)
      state.owned.set(
        p,
        found.find((o) => o.path === p),
      );
  }
  return paths.flatMap((p) => state.owned.get(p) ?? []);
}

/** The image as the first layout holding the version lists it, else the neutral location's. */
async function installedImage(listings: Listings, version: string, targets: Removal['targets']): Promise<string> {
  for (const { layout } of targets) {
    const kernel = (await listings.list(layout)).find((k) => k.version === version);
    if (kernel) return kernel.image;
  }
  return path.join(listings.ctx.paths.moduleDir(version), 'vmlinuz');
}

export const removesModules = (state: RemoveState, removal: Removal) =>
  removal.hasNeutral && !state.keepModules && !removal.ownedModules;

export const leavingOwned = (ctx: Context, owned: PackageOwned) =>
  `leaving ${ctx.paths.inTarget(owned.path)}: ${owned.count} path(s) there belong to ${owned.owners.join(', ')}; removing the package deletes them`;

/** A removal plan without the files a package manager owns: those stay (the plan step's log says so). */
const withoutOwned = (p: Plan, owned: PackageOwned[]): Plan => {
  const left = new Set(owned.map((o) => o.path));
  return left.size === 0 ? p : { ...p, remove: p.remove.filter((file) => !left.has(file)) };
};

/** The layout's removal plan without the files a package manager owns. */
async function planRemoval(state: RemoveState, layout: Layout, version: string): Promise<Plan> {
  const p = await layout.planRemove(state.ctx, version);
  return withoutOwned(p, await packageOwned(state, p.remove));
}

export async function plan(state: RemoveState): Promise<void> {
  const { ctx } = state;
  // Plans have no side effects and each version's is its own: planned side by side (prune's 97).
  await Promise.all(
    state.removals.flatMap((removal) =>
      removal.targets.map(async (target) => {
        target.plan = await target.layout.planRemove(ctx, removal.version);
      }),
    ),
  );
  // One question to the package databases for every plan's files.
  const targets = state.removals.flatMap((r) => r.targets);
  await packageOwned(
    state,
    targets.flatMap((t) => t.plan.remove),
  );
  for (const removal of state.removals) {
    for (const target of removal.targets) {
      const owned = await packageOwned(state, target.plan.remove);
      for (const o of owned) ctx.log.info(leavingOwned(ctx, o));
      target.plan = withoutOwned(target.plan, owned);
    }
    const empty = removal.targets.every(({ plan: p }) => p.remove.length + p.place.length + p.write.length + p.link.length === 0);
    if (empty && !removal.hasNeutral) {
      throw new KinstallError('ENOTINSTALLED', { version: removal.version, layout: layoutNames(removal) });
    }
    // --dry-run prints the removal as its result (describeRemoval): the log says it only for a real run.
    const level = ctx.request.dryRun ? 'debug' : 'info';
    for (const { plan: p } of removal.targets) for (const line of describePlan(p)) ctx.log.log(level, line);
    if (removesModules(state, removal)) ctx.log.log(level, `then delete ${ctx.paths.moduleDir(removal.version)}`);
    else if (removal.ownedModules && !state.keepModules) ctx.log.log(level, leavingOwned(ctx, removal.ownedModules));
  }
}

/**
 * Before anything is deleted: the boot dir, ESP and /lib/modules resolve inside the root, every
 * target stays inside its area, and the bootloader tools the layouts will run are installed (a
 * missing one would fail after the commit, and again in the rollback).
 */
export async function preflight(state: RemoveState): Promise<void> {
  const { ctx } = state;
  const targets = state.removals.flatMap((r) => r.targets);
  const problems = [
    ...(await checkAreasInsideRoot(ctx)),
    ...(await missingTools(
      ctx,
      targets.flatMap((t) => t.layout.requiredTools?.(ctx) ?? []),
    )),
  ];
  for (const { plan: p } of targets) problems.push(...(await planTargetProblems(p, ctx)));
  // The first removal's layout decides which redundant hooks are skipped (grub's update-grub).
  const options = { shippedDir: state.shippedHooksDir, layout: state.removals[0] ? layoutNames(state.removals[0]) : '' };
  state.hookOrder = { prerm: await discoverHooks(ctx, 'prerm', options), postrm: await discoverHooks(ctx, 'postrm', options) };
  throwProblems(problems);
  await checkTargetHooks(ctx, [...state.hookOrder.prerm.run, ...state.hookOrder.postrm.run], state.stagingArea);
}

/**
 * Each version's plan, then its modules. A later version is planned again on the files the earlier
 * removals left (lilo moves vmlinuz.old to a kernel that stays), and its targets checked again.
 */
export async function commit(state: RemoveState): Promise<void> {
  const { ctx } = state;
  // One journal write for every version's files and modules tree as planned (prune's 97 kernels);
  // an entry a re-plan drops is undone as nothing, what a re-plan adds is journaled as it comes.
  await state.txn.journalPlans(
    state.removals.flatMap((r) => r.targets.map((t) => t.plan)),
    state.removals.filter((r) => removesModules(state, r)).map((r) => ctx.paths.moduleDir(r.version)),
  );
  for (const [index, removal] of state.removals.entries()) {
    for (const target of removal.targets) {
      if (index > 0) {
        target.plan = await planRemoval(state, target.layout, removal.version);
        await checkPlanTargets(target.plan, ctx);
      }
      await state.txn.apply(target.plan);
    }
    if (removesModules(state, removal)) await state.txn.removeTree(ctx.paths.moduleDir(removal.version));
  }
  // A removed trial takes its record along: a later install of the same version starts afresh.
  const record = await readTrialRecord(ctx);
  if (record && state.removals.some((r) => r.version === record.version)) {
    await state.txn.apply({ ...emptyPlan(), remove: [ctx.paths.under(TRIAL_RECORD)] });
  }
}

export async function deactivate(state: RemoveState): Promise<void> {
  // The layouts' tools read the files as they are on the disk (lilo maps their blocks).
  await state.txn.settle();
  for (const removal of state.removals) {
    for (const { layout, plan: p } of removal.targets) {
      await layout.deactivate?.(state.ctx, removal.version, p, state.txn.forLayout(layout.name));
    }
  }
  state.txn.checkpoint('activated');
}

export async function runRemoveHooks(state: RemoveState, phase: 'prerm' | 'postrm'): Promise<HookOutcome> {
  const { ctx } = state;
  const hooks = state.hookOrder?.[phase].run ?? [];
  const outcome = emptyOutcome();
  for (const removal of state.removals) {
    const info = {
      version: removal.version,
      image: removal.image,
      sourceImage: removal.image,
      layout: layoutNames(removal),
      initrdGenerator: '-',
      ukiGenerator: ctx.settings.ukiGenerator ?? '',
      stagingArea: state.stagingArea,
      initrds: [],
      imageType: 'unknown',
    };
    const one = await runHooks(ctx, phase, hooks, info);
    outcome.ran.push(...one.ran);
    outcome.failed.push(...one.failed);
  }
  return outcome;
}

export const layoutNames = (removal: Removal) => removal.targets.map((t) => t.layout.name).join('+');
export const removedFiles = (removal: Removal) => [...new Set(removal.targets.flatMap((t) => t.plan.remove))];
