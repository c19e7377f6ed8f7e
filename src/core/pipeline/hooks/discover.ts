// What runs in a phase: every protocol's directories read, masked by name, filtered (leftovers,
// masks, redundant steps), and merged into one version-sorted order. Each skip keeps its reason,
// for --verbose and --dry-run.
import { access, constants, lstat, readdir, readlink } from '../../quick-fs.js';
import path from 'node:path';
import { scopedLog, type Context } from '../../context.js';
import { isFile } from '../../fs.js';
import { assertTrusted } from '../trust.js';
import { declaredSkipReason } from './declarations.js';
import { hookSearchPath } from './environment.js';
import { compareHookNames, isRunPartsName, leftoverReason } from './names.js';
import { readOsRelease } from '../../system/system-info.js';
import { hookFamilies, isDebianLike, KERNEL_INSTALL_POINT, type HookPhase, type HookProtocol } from './protocols.js';
import { redundancyOf, type OwnStep } from './redundant.js';
import { isTargetHook } from './target.js';

export interface Hook {
  name: string;
  path: string;
  protocol: HookProtocol;
  phase: HookPhase;
  /** The kinstall step it redoes, when `runRedundant` lets it run anyway. */
  redoes?: OwnStep;
}

export interface SkippedHook extends Omit<Hook, 'redoes'> {
  reason: string;
}

export interface HookOrder {
  phase: HookPhase;
  run: Hook[];
  skipped: SkippedHook[];
}

export interface DiscoverOptions {
  shippedDir?: string;
  /** The layout as hooks are told it (redundancy depends on it). */
  layout: string;
  /** Warn about a non-executable hook (off for the early trust check). */
  warn?: boolean;
}

/** Whether a file is a mask: an empty file or a link to /dev/null. */
async function isMask(file: string): Promise<boolean> {
  const info = await lstat(file);
  if (info.isSymbolicLink()) return (await readlink(file)) === '/dev/null';
  return info.isFile() && info.size === 0;
}

/** Why a name is not a hook of its protocol, or undefined. */
function nameProblem(name: string, protocol: HookProtocol): string | undefined {
  const leftover = leftoverReason(name);
  if (leftover) return leftover;
  if (protocol === 'kernel-install' && !name.endsWith('.install')) return 'kernel-install runs only *.install files';
  if (protocol === 'run-parts' && !isRunPartsName(name)) return 'not a run-parts name (letters, digits, - and _)';
  return undefined;
}

/** kernel-install's plugins are split at the install point; every other family runs in its phase. */
function inPhase(name: string, protocol: HookProtocol, phase: HookPhase): boolean {
  if (protocol !== 'kernel-install') return true;
  const before = compareHookNames(name, KERNEL_INSTALL_POINT) < 0;
  return (phase === 'preinst' || phase === 'prerm') === before;
}

const isExecutable = (file: string) =>
  access(file, constants.X_OK).then(
    () => true,
    () => false,
  );

/** One file that won its name in its family: run, or skipped with the reason. */
async function judge(ctx: Context, entry: Hook, options: DiscoverOptions): Promise<string | undefined> {
  const { name, path: file, protocol } = entry;
  const problem = nameProblem(name, protocol);
  if (problem) return problem;
  if (await isMask(file)) return `masked by ${file}`;
  if (!(await isFile(file))) return 'not a regular file';
  if (!(await isExecutable(file))) {
    if (options.warn !== false) scopedLog(ctx, entry.phase).warn(`skipping ${file}: not executable (chmod +x to enable it)`);
    return 'not executable';
  }
  if (protocol === 'kinstall') {
    const declared = await declaredSkipReason(ctx, file, entry.phase, hookSearchPath(ctx));
    if (declared) return declared;
  }
  if (ctx.settings.targetHooks === 'skip' && isTargetHook(ctx, entry))
    return 'the target\'s hooks do not run under --root (targetHooks is "skip")';
  const redundancy = redundancyOf(name, protocol, options.layout, ctx.settings.secureBootKey !== undefined);
  if (redundancy) {
    if (!ctx.settings.runRedundant.includes(name))
      return `redundant: it ${redundancy.what} (add "${name}" to runRedundant to run it anyway)`;
    entry.redoes = redundancy.step;
  }
  return undefined;
}

export async function discoverHooks(ctx: Context, phase: HookPhase, options: DiscoverOptions): Promise<HookOrder> {
  const order: HookOrder = { phase, run: [], skipped: [] };
  const debian = isDebianLike(await readOsRelease(ctx));
  for (const family of hookFamilies(phase, options.shippedDir, ctx.paths.under, debian)) {
    const winners = new Map<string, string>();
    for (const dir of family.dirs) {
      for (const name of await readdir(dir).catch(() => [] as string[])) winners.set(name, path.join(dir, name));
    }
    for (const [name, file] of winners) {
      if (!inPhase(name, family.protocol, phase)) continue;
      const entry: Hook = { name, path: file, protocol: family.protocol, phase };
      const reason = await judge(ctx, entry, options);
      if (reason) {
        order.skipped.push({ name, path: file, protocol: family.protocol, phase, reason });
        continue;
      }
      // Whoever can replace the file or the directory holding it runs code as root.
      await assertTrusted(path.dirname(file), 'hook directory');
      await assertTrusted(file, 'hook');
      order.run.push(entry);
    }
  }
  const byName = (a: { name: string; path: string }, b: { name: string; path: string }) =>
    compareHookNames(a.name, b.name) || (a.path < b.path ? -1 : 1);
  order.run.sort(byName);
  order.skipped.sort(byName);
  const log = scopedLog(ctx, phase);
  for (const skip of order.skipped) log.debug(`not running ${skip.path}: ${skip.reason}`);
  return order;
}

/** One line of `add --dry-run`: a hook that would run, or would be skipped and why. */
export interface HookListing {
  phase: HookPhase;
  name: string;
  path: string;
  protocol: HookProtocol;
  runs: boolean;
  reason?: string;
  redoes?: OwnStep;
}

/** The phases' hooks in the order they would run, each skipped one in its place with its reason. */
export function listHookOrder(orders: HookOrder[]): HookListing[] {
  return orders.flatMap((order) =>
    [...order.run.map((h) => ({ ...h, runs: true })), ...order.skipped.map((s) => ({ ...s, runs: false }))].sort(
      (a, b) => compareHookNames(a.name, b.name) || (a.path < b.path ? -1 : 1),
    ),
  );
}
