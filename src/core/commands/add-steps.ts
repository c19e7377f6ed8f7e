// The steps of `kinstall add`, each over the one install state; add.ts holds their table, the hook
// steps are in add-hooks.ts.
import { copyFile, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { scopedLog, type Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { firstFile, isFile } from '../fs.js';
import type { HookOrder } from '../pipeline/hooks/discover.js';
import type { HookOutcome } from '../pipeline/hooks/run.js';
import type { RemovalInTransaction } from './remove.js';
import type { PipelineState } from '../pipeline/pipeline.js';
import { chooseGenerator, chooseLayout } from '../pipeline/select.js';
import { argumentPath, resolveInRoot } from '../paths.js';
import { locateKernel } from '../system/kernel-sources.js';
import { staleIndexReason } from '../system/depmod-index.js';
import { decideTrial, planTrialRecord } from '../pipeline/trial.js';
import {
  depmodArguments,
  holdsModules,
  NEUTRAL_NAMES,
  planNeutralLocation,
  type KernelSources,
} from '../system/neutral-location.js';
import type { InitramfsAhead } from './add-ahead.js';
import { describePlan, type InitramfsGenerator, type Layout, type Plan, type StagedKernel } from '../types.js';

export interface InstallInput {
  version?: string;
  image?: string;
  systemMap?: string;
  /** Prebuilt initramfs files (--initrd); several are concatenated, microcode first. */
  initrds: string[];
  /** Where kinstall's own hooks live (the package's hooks.d). */
  shippedHooksDir?: string;
  /** installkernel --all: the initramfs being made ahead, in the staging area this install uses. */
  ahead?: InitramfsAhead;
  /** installkernel --all: runs a generation when one of the --jobs slots is free. */
  initramfsSlot?: <T>(generate: () => Promise<T>) => Promise<T>;
}

/** What the resolve step decided: the kernel, its layout and where its initramfs comes from. */
export interface ResolvedInstall {
  kernel: StagedKernel;
  /** Files to put into the neutral location; absent when the kernel is there already. */
  sources?: KernelSources;
  layout: Layout;
  generator?: InitramfsGenerator;
  /** initrd_generator names no generator of kinstall's (ugrd): a preinst hook is to make the initramfs. */
  foreignGenerator?: string;
  prebuiltInitrds: string[];
}

export interface InstallState extends PipelineState {
  input: InstallInput;
  /** The run's private (0700) scratch directory: the generated initramfs waits here. */
  stagingArea: string;
  /** Set by resolve; every later step works on it. */
  resolved?: ResolvedInstall;
  /** The files placed into the neutral location. */
  staged: string[];
  /** depmod rebuilt the module index in this install. */
  indexRebuilt?: boolean;
  /** Whether the module index is current, looked at from the preflight step on (startIndexCheck). */
  indexCheck?: Promise<string | undefined>;
  /** The layout's plan; empty until the plan step. */
  plan: Plan;
  /** Every hook of both phases, found once before anything changes (the hooks step). */
  hookOrder?: { preinst: HookOrder; postinst: HookOrder };
  preinst?: HookOutcome;
  postinst?: HookOutcome;
  /** The preinst hooks whose initrd files became the initramfs (kinstall's generator did not run). */
  initrdFromHooks?: string[];
  /** uki_generator names a generator the layout lacks (ukify): a preinst hook is to leave uki.efi. */
  foreignUkiGenerator?: string;
  /** Old kernels the space step removed in this transaction to make room (--make-room). */
  madeRoom?: RemovalInTransaction;
  /** A trial install (--try): the kernel that stays the default until it is confirmed. */
  trialPrevious?: string;
}

/** What resolve decided, for the steps after it. */
export function resolvedOf(state: InstallState): ResolvedInstall {
  if (!state.resolved) throw new Error('an install step ran before resolve');
  return state.resolved;
}

/** Who makes the initramfs, as hooks and the history log name it. */
export const generatorName = ({
  prebuiltInitrds,
  generator,
  foreignGenerator,
}: Pick<ResolvedInstall, 'prebuiltInitrds' | 'generator' | 'foreignGenerator'>): string =>
  prebuiltInitrds.length > 0 ? 'prebuilt' : (foreignGenerator ?? generator?.name ?? 'none');

/** Where kinstall's own initramfs waits: not an `initrd*` name, which the staging area keeps for hooks' outputs. */
export const OWN_INITRD = 'kinstall-initrd.img';

/** initrd_generator names a generator kinstall does not have: a hook's to make. */
function foreignGeneratorName(ctx: Context): string | undefined {
  const name = ctx.settings.initrdGenerator;
  return name !== 'auto' && !ctx.registry.generators.some((g) => g.name === name) ? name : undefined;
}

/**
 * The initramfs a distribution kernel ships with its image (Gentoo's dist-kernels with
 * USE=initramfs): an `initrd` beside the image, or in the neutral location beside its vmlinuz.
 */
async function findNeighbourInitrd(ctx: Context, image: string, version: string): Promise<string | undefined> {
  const neutral = path.join(ctx.paths.moduleDir(version), 'initrd');
  return (await firstFile([path.join(path.dirname(image), 'initrd')])) ?? firstFile([await resolveInRoot(ctx, neutral)]);
}

/**
 * Where a kernel file will be in the neutral location once placed there; the source itself under
 * --dry-run (nothing is placed); undefined when there is no such file.
 */
async function neutralPath(
  ctx: Context,
  version: string,
  sources: KernelSources | undefined,
  key: keyof typeof NEUTRAL_NAMES,
): Promise<string | undefined> {
  const neutral = path.join(ctx.paths.moduleDir(version), NEUTRAL_NAMES[key]);
  const source = sources?.[key];
  if (source) return ctx.request.dryRun ? source : neutral;
  return firstFile([await resolveInRoot(ctx, neutral)]);
}

/** The early microcode images distributions install into the boot dir (Gentoo's intel-microcode, linux-firmware). */
const MICROCODE_IMAGES = ['intel-uc.img', 'amd-uc.img'];

async function findMicrocode(ctx: Context): Promise<string[]> {
  const found: string[] = [];
  for (const name of MICROCODE_IMAGES) {
    const file = path.join(ctx.paths.boot, name);
    if (await isFile(file)) found.push(file);
  }
  return found;
}

/** Step 1: which kernel, from where, in which layout, with which initramfs. */
export async function resolve(state: InstallState): Promise<void> {
  const { ctx, input } = state;
  const { version, image, info, sources } = await locateKernel(ctx, input);
  const neighbourInitrd = await findNeighbourInitrd(ctx, image, version);
  // --initrd files under --root by the same rule as IMAGE (paths.ts).
  const given = await Promise.all(input.initrds.map((file) => argumentPath(ctx, file, 'ENOINITRD')));
  const prebuiltInitrds = given.length > 0 ? given : neighbourInitrd ? [neighbourInitrd] : [];
  for (const file of prebuiltInitrds) {
    if (!(await isFile(file))) throw new KinstallError('ENOINITRD', { path: file });
  }
  const layout = await chooseLayout(ctx, info);
  const foreignGenerator = prebuiltInitrds.length > 0 ? undefined : foreignGeneratorName(ctx);
  const generator = prebuiltInitrds.length > 0 || foreignGenerator ? undefined : await chooseGenerator(ctx);
  const produces = prebuiltInitrds.length > 0 || foreignGenerator !== undefined || generator?.producesImage === true;
  const initrdGenerator = generatorName({ prebuiltInitrds, generator, foreignGenerator });
  const trial = await decideTrial(ctx, layout, version, await layout.list(ctx));
  state.trialPrevious = trial.previous;
  state.resolved = {
    sources,
    layout,
    generator,
    foreignGenerator,
    prebuiltInitrds,
    kernel: {
      version,
      moduleDir: ctx.paths.moduleDir(version),
      image: (await neutralPath(ctx, version, sources, 'image')) ?? image,
      imageInfo: info,
      systemMap: await neutralPath(ctx, version, sources, 'systemMap'),
      config: await neutralPath(ctx, version, sources, 'config'),
      initrd: produces ? path.join(state.stagingArea, foreignGenerator ? 'initrd' : OWN_INITRD) : undefined,
      initrdGenerator,
      stagingArea: state.stagingArea,
      microcode: await findMicrocode(ctx),
      trial: trial.trial || undefined,
    },
  };
  const as = trial.trial
    ? `, as a trial (${trial.previous ?? 'the previous default'} stays the default until kinstall confirm)`
    : '';
  ctx.log.info(
    `installing ${version} (${info.format}, ${info.arch}) with layout ${layout.name}, initramfs ${initrdGenerator}${as}`,
  );
}

/** After activation: the trial's record, through the transaction (a rollback drops it with the install). */
export async function recordTrial(state: InstallState): Promise<void> {
  const { ctx } = state;
  const { kernel, layout } = resolvedOf(state);
  const record = {
    version: kernel.version,
    layout: layout.name,
    previous: state.trialPrevious,
    installed: new Date().toISOString(),
  };
  await state.txn.apply(planTrialRecord(ctx, record));
}

/**
 * From the preflight step on, find(1) looks at the module index on the other core while this
 * process checks and stages (no step before depmod changes a module); the depmod step takes the
 * answer. Not under --dry-run (no depmod step) or --depmod always.
 */
export function startIndexCheck(state: InstallState): void {
  const { ctx } = state;
  if (ctx.request.dryRun || ctx.request.depmod === 'always' || state.indexCheck) return;
  state.indexCheck = staleIndexReason(resolvedOf(state).kernel.moduleDir, ctx.exec);
  // A run that fails before the depmod step never asks.
  state.indexCheck.catch(() => undefined);
}

/** Step 3: the kernel's files into the neutral location, through the transaction. */
export async function placeInNeutralLocation(state: InstallState): Promise<void> {
  const { ctx } = state;
  const { kernel, sources } = resolvedOf(state);
  if (!sources) return;
  const plan = await planNeutralLocation(ctx, sources);
  await state.txn.apply(plan);
  state.staged = plan.place.map((p) => p.to);
  // Files left untouched may be links naming the target's /usr/src: read them through the root.
  kernel.image = await resolveInRoot(ctx, kernel.image);
  if (kernel.systemMap) kernel.systemMap = await resolveInRoot(ctx, kernel.systemMap);
  if (kernel.config) kernel.config = await resolveInRoot(ctx, kernel.config);
}

/** depmod runs only for a kernel with modules. */
export async function modulesInstalled(state: InstallState): Promise<boolean> {
  const { moduleDir } = resolvedOf(state).kernel;
  if (await holdsModules(moduleDir)) return true;
  state.ctx.log.info(`no modules installed in ${moduleDir}: skipping depmod`);
  return false;
}

/** Every name depmod (kmod) writes in lib/modules/KVER; the rest of modules.* is its input. */
const DEPMOD_OUTPUTS = [
  'modules.dep',
  'modules.dep.bin',
  'modules.alias',
  'modules.alias.bin',
  'modules.softdep',
  'modules.weakdep',
  'modules.symbols',
  'modules.symbols.bin',
  'modules.builtin.bin',
  'modules.builtin.alias.bin',
  'modules.devname',
];
const DEPMOD_INPUTS = new Set(['modules.order', 'modules.builtin', 'modules.builtin.modinfo']);

/**
 * Step 4. depmod writes its index itself, so what it may write is preserved through the transaction
 * first: a rollback puts back a previous depmod's files byte for byte and deletes new ones. A current
 * index (newer than every module and depmod's inputs) is kept as it is, unless --depmod always.
 */
export async function depmod(state: InstallState): Promise<void> {
  const { ctx } = state;
  const { version, moduleDir: dir } = resolvedOf(state).kernel;
  const stale = ctx.request.depmod === 'always' ? '--depmod always' : await (state.indexCheck ?? staleIndexReason(dir, ctx.exec));
  if (stale === undefined) {
    ctx.log.debug(
      `depmod: the module index of ${version} is current (newer than every module, modules.order and modules.builtin): not run`,
    );
    return;
  }
  ctx.log.debug(`depmod: rebuilding the module index of ${version}: ${stale}`);
  const present = (await readdir(dir)).filter((name) => name.startsWith('modules.') && !DEPMOD_INPUTS.has(name));
  await state.txn.preserve([...new Set([...DEPMOD_OUTPUTS, ...present])].map((name) => path.join(dir, name)));
  state.indexRebuilt = true;
  await ctx.exec.run('depmod', await depmodArguments(ctx, version));
}

export async function initramfs(state: InstallState): Promise<void> {
  const { ctx } = state;
  const { kernel, layout, generator, prebuiltInitrds } = resolvedOf(state);
  if (!kernel.initrd || state.initrdFromHooks) return;
  if (prebuiltInitrds.length > 0) {
    const parts = await Promise.all(prebuiltInitrds.map((f) => readFile(f)));
    if (parts.length === 1) await copyFile(prebuiltInitrds[0] ?? '', kernel.initrd);
    else await writeFile(kernel.initrd, Buffer.concat(parts));
    ctx.log.info(`using prebuilt initramfs ${prebuiltInitrds.join(' + ')}`);
    return;
  }
  if (!generator) return;
  const log = scopedLog(ctx, generator.name);
  if (await layout.buildsInitramfs?.(ctx, kernel)) {
    log.info(`not generating an initramfs for ${kernel.version}: layout ${layout.name} builds its own into its image`);
    kernel.initrd = undefined;
    return;
  }
  log.info(`generating initramfs for ${kernel.version}`);
  const initrd = kernel.initrd;
  const generate = () => generator.generate(ctx, kernel, initrd);
  await (state.input.initramfsSlot ? state.input.initramfsSlot(generate) : generate());
  if (!(await isFile(kernel.initrd))) {
    throw new KinstallError('ETOOL', { tool: generator.name, why: `no initramfs was written to ${kernel.initrd}` });
  }
}

export async function plan(state: InstallState): Promise<void> {
  const { layout, kernel } = resolvedOf(state);
  state.plan = await layout.plan(state.ctx, kernel);
  // --dry-run prints the plan as its result: the log says it only once something is done.
  for (const line of describePlan(state.plan)) state.ctx.log.log(state.ctx.request.dryRun ? 'debug' : 'info', line);
}

export async function commit(state: InstallState): Promise<void> {
  await state.txn.apply(state.plan);
}

export async function activate(state: InstallState): Promise<void> {
  const { layout, kernel } = resolvedOf(state);
  // The layout's tool reads the placed files from the disk (lilo maps their blocks).
  if (layout.activate) await state.txn.settle();
  await layout.activate?.(state.ctx, kernel, state.plan, state.txn.forLayout(layout.name));
  state.txn.checkpoint('activated');
}
