// Try-once installs (`add --try`): whether an install is a trial, the record kinstall keeps of it
// in the target, and what each installed kernel's trial state is (for status, list and confirm).
// The boot loader does the trying (each layout's TrialSupport); the record says which kernel was
// tried and which one it falls back to, which loaders like GRUB and the firmware forget.
import { rename, writeFile } from 'node:fs/promises';
import { readFile } from '../quick-fs.js';
import path from 'node:path';
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { pathExists } from '../fs.js';
import { emptyPlan, type InstalledKernel, type Layout, type Plan, type TrialBootState } from '../types.js';

/** The record, in the target: one trial at a time, the latest. */
export const TRIAL_RECORD = '/var/lib/kinstall/trial.json';

export interface TrialRecord {
  version: string;
  layout: string;
  /** The default before the trial: what boots when the trial does not come up. */
  previous?: string;
  /** When it was installed (ISO time). */
  installed: string;
  /** When `kinstall confirm` made it the default. */
  confirmed?: string;
  /** The fallback was reported once already. */
  warned?: boolean;
}

/** Where the boot-time units that run `kinstall confirm` are enabled, as the target names them. */
const CONFIRM_UNITS = [
  '/etc/systemd/system/boot-complete.target.wants/kinstall-confirm.service',
  '/etc/systemd/system/basic.target.wants/kinstall-confirm.service',
  '/etc/systemd/system/multi-user.target.wants/kinstall-confirm.service',
  '/etc/runlevels/default/kinstall-confirm',
];

/** The enabled confirm unit of the target, if any. */
export async function enabledConfirmUnit(ctx: Context): Promise<string | undefined> {
  for (const unit of CONFIRM_UNITS) if (await pathExists(ctx.paths.under(unit))) return unit;
  return undefined;
}

export async function readTrialRecord(ctx: Context): Promise<TrialRecord | undefined> {
  const text = await readFile(ctx.paths.under(TRIAL_RECORD), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const record = JSON.parse(text) as Partial<TrialRecord>;
    if (typeof record.version !== 'string' || typeof record.layout !== 'string') return undefined;
    return record as TrialRecord;
  } catch {
    ctx.log.warn(`${ctx.paths.under(TRIAL_RECORD)} is not valid JSON: ignoring it`);
    return undefined;
  }
}

/** The record written through the transaction, so a rollback (or a crash) puts the old one back. */
export function planTrialRecord(ctx: Context, record: TrialRecord): Plan {
  const plan = emptyPlan();
  plan.write.push({ path: ctx.paths.under(TRIAL_RECORD), content: `${JSON.stringify(record, null, 2)}\n`, mode: 0o644 });
  return plan;
}

/**
 * Whether this install is a trial. `--try` (tryOnce true) on a layout that cannot try is refused;
 * tryOnce unset means on only where a confirm unit is enabled. A trial needs a default to fall back
 * to: the first kernel, or a reinstall of the default, is installed as the default.
 */
export async function decideTrial(
  ctx: Context,
  layout: Layout,
  version: string,
  installed: InstalledKernel[],
): Promise<{ trial: boolean; previous?: string }> {
  const asked = ctx.settings.tryOnce;
  if (asked === false) return { trial: false };
  const unit = await enabledConfirmUnit(ctx);
  if (asked === undefined && !unit) return { trial: false };
  if (!layout.trial) {
    if (asked === undefined) return { trial: false };
    throw new KinstallError('ENOTRIAL', {
      layout: layout.name,
      why: layout.noTrialReason ?? 'the layout has no way to boot a kernel once',
    });
  }
  const others = installed.filter((k) => k.version !== version);
  const previous = others.find((k) => k.isDefault);
  // Kernels, but none the layout can name as the default (efistub without EFI variables): still a
  // trial, which the layout's trial preflight accepts or refuses.
  if (others.length === 0) {
    ctx.log.warn(
      `no other kernel boots by default in layout ${layout.name}: ${version} is installed as the default, not as a trial (nothing to fall back to)`,
    );
    return { trial: false };
  }
  if (!unit) {
    ctx.log.warn(
      `${version} is installed as a trial, but no confirm unit is enabled in ${ctx.paths.root}: nothing will confirm it, so every boot after the first falls back to ${previous?.version ?? 'the previous default'} until you run kinstall confirm (enable kinstall-confirm.service, or add kinstall-confirm to the OpenRC default runlevel)`,
    );
  }
  return { trial: true, previous: previous?.version };
}

/** A kernel's trial state as status and list show it. */
export type TrialState = 'pending' | 'booted' | 'failed' | 'confirmed';

/** The word `list` shows in its marks column. */
export const TRIAL_MARKS: Record<TrialState, string> = {
  pending: 'trial-pending',
  booted: 'trial-booted',
  failed: 'trial-failed',
  confirmed: 'confirmed',
};

export const describeTrialState: Record<TrialState, string> = {
  pending: 'trial pending',
  booted: 'trial booted, not confirmed yet',
  failed: 'trial failed (fell back)',
  confirmed: 'confirmed',
};

/**
 * The trial state of one installed kernel: what its loader says (armed, spent, default) joined with
 * the record. A spent trial that is not the kernel running now failed: the loader fell back. Under
 * another --root the running kernel is unknown, and a spent trial counts as failed, which is what
 * the loader will do at the next boot unless it is confirmed.
 */
export function trialStateOf(
  ctx: Context,
  kernel: InstalledKernel,
  loader: TrialBootState | undefined,
  record: TrialRecord | undefined,
): TrialState | undefined {
  const recorded = record?.version === kernel.version && record.layout === kernel.layout ? record : undefined;
  if (recorded?.confirmed && loader !== 'armed' && loader !== 'spent') return 'confirmed';
  if (loader === 'armed') return 'pending';
  const spent =
    loader === 'spent' || (loader === undefined && recorded !== undefined && !recorded.confirmed && !kernel.isDefault);
  if (!spent) return undefined;
  return ctx.isHostRoot && ctx.runningRelease === kernel.version ? 'booted' : 'failed';
}

/** Each installed kernel's trial state, by version and layout (`VERSION\0LAYOUT`). */
export async function trialStates(ctx: Context, kernels: InstalledKernel[]): Promise<Map<string, TrialState>> {
  const record = await readTrialRecord(ctx);
  const states = new Map<string, TrialState>();
  for (const kernel of kernels) {
    const layout = ctx.registry.layouts.find((l) => l.name === kernel.layout);
    const loader = await layout?.trial?.state(ctx, kernel.version);
    const state = trialStateOf(ctx, kernel, loader, record);
    if (state) states.set(`${kernel.version}\0${kernel.layout}`, state);
  }
  return states;
}

/**
 * After a trial fell back, the first kinstall command (list, status, add, remove, prune) says so, once: which kernel failed, which one
 * boots instead, and that the failed one stays installed. The record remembers that it was said.
 */
export async function warnFallbackOnce(ctx: Context, listed?: InstalledKernel[]): Promise<void> {
  const record = await readTrialRecord(ctx);
  if (!record || record.warned || record.confirmed || ctx.request.dryRun) return;
  // Commands that list nothing themselves (add, remove, prune) ask the record's layout alone.
  const kernels = listed ?? (await ctx.registry.layouts.find((l) => l.name === record.layout)?.list(ctx)) ?? [];
  const kernel = kernels.find((k) => k.version === record.version && k.layout === record.layout);
  if (!kernel) return;
  const states = await trialStates(ctx, [kernel]);
  if (states.get(`${kernel.version}\0${kernel.layout}`) !== 'failed') return;
  const running = ctx.isHostRoot ? `${ctx.runningRelease} is running` : `${record.previous ?? 'the previous default'} boots`;
  ctx.log.warn(
    `the trial of ${record.version} failed: it did not reach kinstall confirm, and ${running} instead; ${record.version} stays installed but is not the default (kinstall remove ${record.version}, or kinstall add --try again)`,
  );
  // A note, not a change of the boot: written in place of the record, atomically, outside a transaction.
  const file = ctx.paths.under(TRIAL_RECORD);
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.warned`);
  await writeFile(temp, `${JSON.stringify({ ...record, warned: true }, null, 2)}\n`, { mode: 0o644 });
  await rename(temp, file);
}
