// `kinstall remove` (and prune): the layouts' removal plans and the kernels' modules through one
// transaction, the bootloader updated, so a failure anywhere puts every kernel back as it was.
import path from 'node:path';
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { isDirectory } from '../fs.js';
import { recordHistory } from '../pipeline/history.js';
import { discoverHooks, type HookOrder } from '../pipeline/hooks/discover.js';
import { emptyOutcome, runHooks, type HookOutcome } from '../pipeline/hooks/run.js';
import { checkTargetHooks } from '../pipeline/hooks/target.js';
import { createStagingArea, runPipeline, type PipelineState, type Step } from '../pipeline/pipeline.js';
import {
  checkAreasInsideRoot,
  checkPlanTargets,
  missingTools,
  planTargetProblems,
  throwProblems,
} from '../pipeline/preflight.js';
import { layoutsHolding } from '../pipeline/select.js';
import { transactionFor, type Transaction } from '../transaction/transaction.js';
import { describePlan, emptyPlan, type Layout, type Plan } from '../types.js';
import { findPackageOwned, type PackageOwned } from '../system/package-owned.js';
import { checkVersionString } from '../system/versions.js';
import { Listings } from '../system/listings.js';

export interface RemoveInput {
  version: string;
  keepModules: boolean;
  /** The package's own hooks.d (kinstall's shipped hooks). */
  shippedHooksDir?: string;
}

export interface RemoveResult {
  version: string;
  /** The layouts it was removed from, joined with "+" (most often one). */
  layout: string;
  removed: string[];
  modulesRemoved: boolean;
  dryRun: boolean;
}

/** One version to remove: every layout holding it, each with its removal plan. */
interface Removal {
  version: string;
  targets: Array<{ layout: Layout; plan: Plan }>;
  hasNeutral: boolean;
  /** Files a package manager owns in the neutral location: they stay, its removal deletes them. */
  ownedModules?: PackageOwned;
  /** The image the removal takes away, as Debian's prerm.d/postrm.d hooks get it (/boot/vmlinuz-KVER). */
  image: string;
}

interface RemoveState extends PipelineState {
  versions: string[];
  keepModules: boolean;
  shippedHooksDir?: string;
  /** A private (0700) scratch dir hooks see as KINSTALL_STAGING_AREA. */
  stagingArea: string;
  removals: Removal[];
  /** The layouts' listings as resolve reads them, before anything changes. */
  listings: Listings;
  /** prerm and postrm hooks, found once in preflight. */
  hookOrder?: { prerm: HookOrder; postrm: HookOrder };
  prerm: HookOutcome;
  postrm: HookOutcome;
}

async function resolve(state: RemoveState): Promise<void> {
  const { ctx } = state;
  state.removals = [];
  for (const version of state.versions) {
    checkVersionString(version);
    if (ctx.isHostRoot && version === ctx.runningRelease && !ctx.request.force) {
      throw new KinstallError('ERUNNING', { version });
    }
    const targets = (await layoutsHolding(ctx, version, state.listings)).map((layout) => ({ layout, plan: emptyPlan() }));
    const hasNeutral = await isDirectory(ctx.paths.moduleDir(version));
    const [ownedModules] = hasNeutral ? await findPackageOwned(ctx.paths, [ctx.paths.moduleDir(version)]) : [];
    state.removals.push({
      version,
      targets,
      hasNeutral,
      ownedModules,
      image: await installedImage(state.listings, version, targets),
    });
  }
}

/** The image as the first layout holding the version lists it, else the neutral location's. */
async function installedImage(listings: Listings, version: string, targets: Removal['targets']): Promise<string> {
  for (const { layout } of targets) {
    const kernel = (await listings.list(layout)).find((k) => k.version === version);
    if (kernel) return kernel.image;
  }
  return path.join(listings.ctx.paths.moduleDir(version), 'vmlinuz');
}

const removesModules = (state: RemoveState, removal: Removal) =>
  removal.hasNeutral && !state.keepModules && !removal.ownedModules;

const leavingOwned = (ctx: Context, owned: PackageOwned) =>
  `leaving ${ctx.paths.inTarget(owned.path)}: ${owned.count} path(s) there belong to ${owned.owners.join(', ')}; removing the package deletes them`;

/** The layout's removal plan without the files a package manager owns: those stay, and the log says so. */
async function planRemoval(ctx: Context, layout: Layout, version: string): Promise<Plan> {
  const p = await layout.planRemove(ctx, version);
  const owned = await findPackageOwned(ctx.paths, p.remove);
  for (const o of owned) ctx.log.info(leavingOwned(ctx, o));
  const left = new Set(owned.map((o) => o.path));
  return left.size === 0 ? p : { ...p, remove: p.remove.filter((file) => !left.has(file)) };
}

async function plan(state: RemoveState): Promise<void> {
  const { ctx } = state;
  for (const removal of state.removals) {
    for (const target of removal.targets) target.plan = await planRemoval(ctx, target.layout, removal.version);
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
async function preflight(state: RemoveState): Promise<void> {
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
async function commit(state: RemoveState): Promise<void> {
  const { ctx } = state;
  for (const [index, removal] of state.removals.entries()) {
    for (const target of removal.targets) {
      if (index > 0) {
        target.plan = await planRemoval(ctx, target.layout, removal.version);
        await checkPlanTargets(target.plan, ctx);
      }
      await state.txn.apply(target.plan);
    }
    if (removesModules(state, removal)) await state.txn.removeTree(ctx.paths.moduleDir(removal.version));
  }
}

async function deactivate(state: RemoveState): Promise<void> {
  for (const removal of state.removals) {
    for (const { layout, plan: p } of removal.targets) {
      await layout.deactivate?.(state.ctx, removal.version, p, state.txn.forLayout(layout.name));
    }
  }
  state.txn.checkpoint('activated');
}

async function runRemoveHooks(state: RemoveState, phase: 'prerm' | 'postrm'): Promise<HookOutcome> {
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

const removeSteps: Step<RemoveState>[] = [
  { name: 'resolve', run: resolve },
  { name: 'plan', run: plan },
  { name: 'preflight', run: preflight },
  // Debian's /etc/kernel/prerm.d: before anything is removed; a failure stops the removal.
  { name: 'prerm', mutates: true, run: async (s) => void (s.prerm = await runRemoveHooks(s, 'prerm')) },
  { name: 'commit', mutates: true, run: commit },
  { name: 'deactivate', mutates: true, run: deactivate },
  // postrm.d: the kernel is gone; a failure is reported (exit 7), the removal stands.
  { name: 'postrm', mutates: true, run: async (s) => void (s.postrm = await runRemoveHooks(s, 'postrm')) },
];

const layoutNames = (removal: Removal) => removal.targets.map((t) => t.layout.name).join('+');
const removedFiles = (removal: Removal) => [...new Set(removal.targets.flatMap((t) => t.plan.remove))];

/** The remove steps on `txn`, which the caller finishes; the staging area is gone when this returns. */
async function runRemoval(
  ctx: Context,
  txn: Transaction,
  versions: string[],
  keepModules: boolean,
  shippedHooksDir?: string,
  listings = new Listings(ctx),
): Promise<RemoveState> {
  const stagingArea = await createStagingArea(ctx);
  const state: RemoveState = {
    ctx,
    versions,
    keepModules,
    shippedHooksDir,
    stagingArea: stagingArea.path,
    removals: [],
    listings,
    prerm: emptyOutcome(),
    postrm: emptyOutcome(),
    txn,
  };
  try {
    await runPipeline(removeSteps, state);
  } finally {
    await stagingArea.cleanup();
  }
  return state;
}

/** The history lines and log of a finished removal. */
async function recordRemovals(state: RemoveState): Promise<void> {
  const { ctx } = state;
  for (const removal of state.removals) {
    const hooks = [...new Set([...state.prerm.ran, ...state.postrm.ran])];
    const event = {
      action: 'remove' as const,
      version: removal.version,
      layout: layoutNames(removal),
      initrdGenerator: '-',
      files: removedFiles(removal),
      hooks,
    };
    await recordHistory(ctx, event, { installkernelLog: false });
    ctx.log.info(`removed ${removal.version} (${layoutNames(removal)})`);
  }
}

const resultsOf = (state: RemoveState): RemoveResult[] =>
  state.removals.map((removal) => ({
    version: removal.version,
    layout: layoutNames(removal),
    removed: removedFiles(removal),
    modulesRemoved: removesModules(state, removal),
    dryRun: state.ctx.request.dryRun,
  }));

/** Removes several versions as one transaction: all of them, or (on failure) none. */
export async function removeKernels(
  ctx: Context,
  versions: string[],
  keepModules: boolean,
  shippedHooksDir?: string,
  listings = new Listings(ctx),
): Promise<RemoveResult[]> {
  const state = await runRemoval(ctx, transactionFor(ctx), versions, keepModules, shippedHooksDir, listings);
  if (!ctx.request.dryRun) {
    await state.txn.finish();
    await recordRemovals(state);
  }
  const failed = state.postrm.failed;
  if (failed.length > 0) {
    throw new KinstallError('EPOSTRM', {
      count: String(failed.length),
      hooks: failed.map((f) => `${f.hook} (exit ${f.status})`).join(', '),
    });
  }
  return resultsOf(state);
}

/** Removals staged into another command's transaction (add --make-room): `record` once that one finished. */
export interface RemovalInTransaction {
  results: RemoveResult[];
  record(): Promise<void>;
}

/**
 * Removes versions inside `txn`, which the caller finishes or rolls back with its own changes (the
 * install that needs their room). A failed postrm hook is reported, as remove reports it, but
 * as a warning: the removal stands with the install.
 */
export async function removeInTransaction(
  ctx: Context,
  txn: Transaction,
  versions: string[],
  shippedHooksDir?: string,
): Promise<RemovalInTransaction> {
  const state = await runRemoval(ctx, txn, versions, false, shippedHooksDir);
  for (const f of state.postrm.failed) ctx.log.warn(`postrm hook ${f.hook} failed with exit code ${f.status}`);
  return { results: resultsOf(state), record: () => recordRemovals(state) };
}

/** What a removal deletes, one line each, as --dry-run prints it: its files, then its modules tree. */
export function describeRemoval(ctx: Context, result: RemoveResult): string[] {
  const verb = result.dryRun ? 'would remove' : 'removed';
  const modules = result.modulesRemoved ? [`${verb} ${ctx.paths.moduleDir(result.version)}/ (the whole tree)`] : [];
  return [...result.removed.map((file) => `${verb} ${file}`), ...modules];
}

export async function removeKernel(ctx: Context, input: RemoveInput): Promise<RemoveResult> {
  const [result] = await removeKernels(ctx, [input.version], input.keepModules, input.shippedHooksDir);
  if (!result) throw new Error(`no result for ${input.version}`);
  return result;
}
