// `kinstall add` and `installkernel`: the install pipeline as a table of steps over one state.
import { copyFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { dir as tmpDir, type DirectoryResult } from 'tmp-promise';
import { scopedLog, type Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { appendHistory } from '../pipeline/history.js';
import { checkHooksTrusted, discoverHooks, runHooks, type HookOutcome } from '../pipeline/hooks.js';
import { existing, locateKernel } from '../system/kernel-sources.js';
import { runPipeline, type PipelineState, type Step } from '../pipeline/pipeline.js';
import { chooseGenerator, chooseLayout } from '../pipeline/select.js';
import { resolveInRoot } from '../paths.js';
import { NEUTRAL_NAMES, planStaging, type KernelSources } from '../system/neutral-location.js';
import { transactionFor } from '../transaction/transaction.js';
import { describePlan, type InitramfsGenerator, type KernelImageInfo, type Layout, type Plan, type StagedKernel } from '../types.js';
import { checkPlanTargets, runPreflight } from '../pipeline/preflight.js';
import { pruneAfterInstall } from './prune.js';
import { checkFreeSpace } from '../pipeline/space.js';

export interface InstallInput {
  version?: string;
  image?: string;
  systemMap?: string;
  config?: string;
  /** Prebuilt initramfs files (--initrd); several are concatenated, microcode first. */
  initrds: string[];
  /** Where kinstall's own hooks live (the package's hooks.d). */
  shippedHooksDir?: string;
}

export interface InstallResult {
  version: string;
  layout: string;
  initrdGenerator: string;
  dryRun: boolean;
  staged: string[];
  installed: string[];
  plan: Plan;
  hooks: { preinst: string[]; postinst: string[] };
  /** Kernels removed afterwards to honour `keep`. */
  pruned: string[];
}

interface InstallState extends PipelineState {
  input: InstallInput;
  version: string;
  sources?: KernelSources;
  imageInfo: KernelImageInfo;
  layout: Layout;
  generator?: InitramfsGenerator;
  prebuiltInitrds: string[];
  kernel: StagedKernel;
  staging: DirectoryResult;
  plan: Plan;
  staged: string[];
  preinst?: HookOutcome;
  postinst?: HookOutcome;
}

const hasModules = async (dir: string) =>
  (await stat(path.join(dir, 'modules.order')).then(() => true, () => false)) ||
  (await stat(path.join(dir, 'kernel')).then((s) => s.isDirectory(), () => false));

/**
 * The initramfs a distribution kernel ships with its image (Gentoo's dist-kernels with
 * USE=initramfs): an `initrd` beside the image, or in the neutral location beside its vmlinuz.
 */
async function findNeighbourInitrd(ctx: Context, image: string, version: string): Promise<string | undefined> {
  const beside = await existing(path.join(path.dirname(image), 'initrd'));
  if (beside) return beside;
  const neutral = path.join(ctx.paths.moduleDir(version), 'initrd');
  return existing(await resolveInRoot(ctx, neutral));
}

/** Step 1: which kernel, from where, in which layout, with which initramfs. */
async function resolve(state: InstallState): Promise<void> {
  const { ctx, input } = state;
  const { version, image, info, sources } = await locateKernel(ctx, input);
  state.version = version;
  state.imageInfo = info;
  state.sources = sources;
  const neighbourInitrd = await findNeighbourInitrd(ctx, image, version);
  state.prebuiltInitrds = input.initrds.length > 0 ? input.initrds : neighbourInitrd ? [neighbourInitrd] : [];
  for (const file of state.prebuiltInitrds) {
    if (!(await existing(file))) throw new KinstallError('ENOINITRD', { path: file });
  }
  state.layout = await chooseLayout(ctx, info);
  state.generator = state.prebuiltInitrds.length > 0 ? undefined : await chooseGenerator(ctx);
  const produces = state.prebuiltInitrds.length > 0 || state.generator?.producesImage === true;
  state.kernel = {
    version,
    moduleDir: ctx.paths.moduleDir(version),
    image: (await stagedPath(state, 'image')) ?? image,
    imageInfo: info,
    systemMap: await stagedPath(state, 'systemMap'),
    config: await stagedPath(state, 'config'),
    initrd: produces ? path.join(state.staging.path, 'initrd') : undefined,
    initrdGenerator: generatorName(state),
    stagingArea: state.staging.path,
  };
  ctx.log.info(`installing ${version} (${info.format}, ${info.arch}) with layout ${state.layout.name}, initramfs ${generatorName(state)}`);
}

/**
 * Where a kernel file will be in the neutral location once staged; the source itself under
 * --dry-run (nothing is staged); undefined when there is no such file.
 */
async function stagedPath(state: InstallState, key: keyof typeof NEUTRAL_NAMES): Promise<string | undefined> {
  const neutral = path.join(state.ctx.paths.moduleDir(state.version), NEUTRAL_NAMES[key]);
  const source = state.sources?.[key];
  if (source) return state.ctx.request.dryRun ? source : neutral;
  const inRoot = await resolveInRoot(state.ctx, neutral);
  return (await existing(inRoot)) ? inRoot : undefined;
}


function generatorName(state: InstallState): string {
  return state.prebuiltInitrds.length > 0 ? 'prebuilt' : (state.generator?.name ?? 'none');
}

/** Step 3: the kernel's files into the neutral location, through the transaction. */
async function stage(state: InstallState): Promise<void> {
  if (!state.sources) return;
  const plan = await planStaging(state.ctx, state.sources);
  await state.txn.apply(plan);
  state.staged = plan.place.map((p) => p.to);
  // Files left untouched may be links naming the target's /usr/src: read them through the root.
  const { kernel, ctx } = state;
  kernel.image = await resolveInRoot(ctx, kernel.image);
  if (kernel.systemMap) kernel.systemMap = await resolveInRoot(ctx, kernel.systemMap);
  if (kernel.config) kernel.config = await resolveInRoot(ctx, kernel.config);
}

/** Every name depmod (kmod) writes in lib/modules/KVER; the rest of modules.* is its input. */
const DEPMOD_OUTPUTS = [
  'modules.dep', 'modules.dep.bin', 'modules.alias', 'modules.alias.bin', 'modules.softdep', 'modules.weakdep',
  'modules.symbols', 'modules.symbols.bin', 'modules.builtin.bin', 'modules.builtin.alias.bin', 'modules.devname',
];
const DEPMOD_INPUTS = new Set(['modules.order', 'modules.builtin', 'modules.builtin.modinfo']);

/**
 * Step 4. depmod writes its index itself, so what it may write is preserved through the transaction
 * first: a rollback puts back a previous depmod's files byte for byte and deletes new ones.
 */
async function depmod(state: InstallState): Promise<void> {
  const { ctx, version } = state;
  const dir = state.kernel.moduleDir;
  const present = (await readdir(dir)).filter((name) => name.startsWith('modules.') && !DEPMOD_INPUTS.has(name));
  await state.txn.preserve([...new Set([...DEPMOD_OUTPUTS, ...present])].map((name) => path.join(dir, name)));
  await ctx.exec.run('depmod', ['-a', '-b', ctx.paths.root, version]);
}

async function initramfs(state: InstallState): Promise<void> {
  const { ctx, kernel } = state;
  if (!kernel.initrd) return;
  if (state.prebuiltInitrds.length > 0) {
    const { readFile, writeFile } = await import('node:fs/promises');
    const parts = await Promise.all(state.prebuiltInitrds.map((f) => readFile(f)));
    if (parts.length === 1) await copyFile(state.prebuiltInitrds[0] ?? '', kernel.initrd);
    else await writeFile(kernel.initrd, Buffer.concat(parts));
    ctx.log.info(`using prebuilt initramfs ${state.prebuiltInitrds.join(' + ')}`);
    return;
  }
  const generator = state.generator;
  if (!generator) return;
  const log = scopedLog(ctx, generator.name);
  if (await state.layout.buildsInitramfs?.(ctx, kernel)) {
    log.info(`not generating an initramfs for ${kernel.version}: layout ${state.layout.name} builds its own into its image`);
    kernel.initrd = undefined;
    return;
  }
  log.info(`generating initramfs for ${kernel.version}`);
  await generator.generate(ctx, kernel, kernel.initrd);
  if (!(await existing(kernel.initrd))) {
    throw new KinstallError('ETOOL', { tool: generator.name, why: `no initramfs was written to ${kernel.initrd}` });
  }
}

function hookInfo(state: InstallState, image: string) {
  return {
    version: state.version,
    image,
    layout: state.layout.name,
    initrdGenerator: generatorName(state),
    stagingArea: state.staging.path,
    initrd: state.kernel.initrd,
  };
}

async function preinst(state: InstallState): Promise<void> {
  const hooks = await discoverHooks(state.ctx, 'preinst', state.input.shippedHooksDir);
  // The initramfs is made after these hooks: they get no KINSTALL_INITRD.
  state.preinst = await runHooks(state.ctx, 'preinst', hooks, { ...hookInfo(state, state.kernel.image), initrd: undefined });
}

async function plan(state: InstallState): Promise<void> {
  state.plan = await state.layout.plan(state.ctx, state.kernel);
  for (const line of describePlan(state.plan)) state.ctx.log.info(line);
}

async function commit(state: InstallState): Promise<void> {
  await state.txn.apply(state.plan);
}

async function activate(state: InstallState): Promise<void> {
  await state.layout.activate?.(state.ctx, state.plan, state.txn.forLayout(state.layout.name));
  state.txn.checkpoint('activated');
}

async function postinst(state: InstallState): Promise<void> {
  const hooks = await discoverHooks(state.ctx, 'postinst', state.input.shippedHooksDir);
  state.postinst = await runHooks(state.ctx, 'postinst', hooks, hookInfo(state, state.plan.image ?? state.kernel.image));
}

const installSteps: Step<InstallState>[] = [
  { name: 'resolve', run: resolve },
  { name: 'preflight', run: (s) => runPreflight(s.ctx, { layout: s.layout, generator: s.generator, kernel: s.kernel }) },
  { name: 'trust', run: (s) => checkHooksTrusted(s.ctx, s.input.shippedHooksDir) },
  { name: 'stage', mutates: true, run: stage },
  { name: 'depmod', mutates: true, enabled: (s) => moduleCheck(s), run: depmod },
  // preinst before the initramfs, so that modules a hook adds (DKMS) are in it, as on Debian and
  // with Gentoo's installkernel, where the initramfs is made by a hook sorted among the others.
  { name: 'preinst', mutates: true, run: preinst },
  { name: 'initramfs', mutates: true, run: initramfs },
  { name: 'plan', run: plan },
  { name: 'targets', run: (s) => checkPlanTargets(s.plan, s.ctx) },
  { name: 'space', enabled: (s) => !s.ctx.request.dryRun, run: (s) => checkFreeSpace(s.plan) },
  { name: 'commit', mutates: true, run: commit },
  { name: 'activate', mutates: true, run: activate },
  { name: 'postinst', mutates: true, run: postinst },
];

async function moduleCheck(state: InstallState): Promise<boolean> {
  if (await hasModules(state.kernel.moduleDir)) return true;
  state.ctx.log.info(`no modules installed in ${state.kernel.moduleDir}: skipping depmod`);
  return false;
}

export async function installKernel(ctx: Context, input: InstallInput): Promise<InstallResult> {
  const staging = await tmpDir({ prefix: 'kinstall-', unsafeCleanup: true, mode: 0o700 });
  const state = { ctx, input, txn: transactionFor(ctx), staging, staged: [] as string[] } as unknown as InstallState;
  try {
    await runPipeline(installSteps, state);
    const result: InstallResult = {
      version: state.version,
      layout: state.layout.name,
      initrdGenerator: generatorName(state),
      dryRun: ctx.request.dryRun,
      staged: state.staged,
      installed: [...state.plan.place.map((p) => p.to), ...state.plan.write.map((w) => w.path), ...state.plan.link.map((l) => l.path)],
      plan: state.plan,
      hooks: { preinst: state.preinst?.ran ?? [], postinst: state.postinst?.ran ?? [] },
      pruned: [],
    };
    // Step 11, after the install is final: a failed prune never undoes the install (EPRUNE, exit 7).
    let pruneError: unknown;
    if (!ctx.request.dryRun) {
      await state.txn.finish();
      await appendHistory(ctx, result);
      ctx.log.info(`installed ${state.version} (${state.layout.name})`);
      result.pruned = await pruneAfterInstall(ctx, state.version, input.shippedHooksDir).catch((error: unknown) => {
        pruneError = error;
        return [];
      });
    }
    const failed = state.postinst?.failed ?? [];
    if (failed.length > 0) {
      throw new KinstallError('EPOSTINST', { count: String(failed.length), hooks: failed.map((f) => `${f.hook} (exit ${f.status})`).join(', ') });
    }
    if (pruneError !== undefined) throw pruneError;
    return result;
  } finally {
    await staging.cleanup();
  }
}

/** Every version staged under the root that has an image, for `installkernel --all`. */
export async function stagedVersions(ctx: Context): Promise<string[]> {
  const names = await readdir(ctx.paths.modulesBase).catch(() => [] as string[]);
  const found: string[] = [];
  for (const name of names) {
    if (await existing(path.join(ctx.paths.moduleDir(name), NEUTRAL_NAMES.image))) found.push(name);
  }
  return found.sort();
}
