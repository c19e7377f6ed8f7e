// The grub layout's trial: grubenv's next_entry, grub-reboot's mechanism. grub.cfg's header (00_header)
// boots next_entry once and clears it with save_env before booting it; every later boot takes the
// default, which is saved_entry only with GRUB_DEFAULT=saved. So a trial sets next_entry to the new
// kernel's entry and pins saved_entry to the kernel that was the default, and confirm moves saved_entry.
// GRUB keeps no trace of the boot it made once, so the trial's version is also kept in grubenv
// (kinstall_trial, a variable GRUB loads and ignores) until confirm: that is how a spent trial is told.
import path from 'node:path';
import {
  compareVersions,
  emptyPlan,
  KinstallError,
  type Context,
  type StagedKernel,
  type TransactionHandle,
  type TrialBootState,
  type TrialSupport,
  quickFs,
} from '../../src/core/plugin-api.js';
import { listCompatKernels } from '../shared/compat-files.js';
import { formatGrubenv, readGrubenv, type Grubenv } from './grubenv.js';
import { defaultSelector, entryFor, menuVersions, parseGrubMenu, versionSelectedBy, type MenuItem } from './menu.js';
import { grubConfigPath } from './options.js';

/** GRUB_DEFAULT as grub-mkconfig sees it: /etc/default/grub, then /etc/default/grub.d/*.cfg, the last assignment. */
async function readGrubDefault(ctx: Context): Promise<{ value: string | undefined; file: string }> {
  const main = ctx.paths.under('/etc/default/grub');
  const dropIns = ctx.paths.under('/etc/default/grub.d');
  const extra = (await quickFs.readdir(dropIns).catch(() => [] as string[])).filter((n) => n.endsWith('.cfg')).sort();
  let found: { value: string | undefined; file: string } = { value: undefined, file: main };
  for (const file of [main, ...extra.map((n) => path.join(dropIns, n))]) {
    const text = await quickFs.readFile(file, 'utf8').catch(() => '');
    for (const m of text.matchAll(/^\s*(?:export\s+)?GRUB_DEFAULT=("[^"]*"|'[^']*'|[^\s#;]*)/gm)) {
      found = { value: (m[1] ?? '').replace(/^(["'])(.*)\1$/, '$2'), file };
    }
  }
  return found;
}

interface LoaderState {
  menu: MenuItem[];
  cfg: string;
  env: Grubenv & { file: string };
}

async function readLoader(ctx: Context): Promise<LoaderState | undefined> {
  const cfg = await quickFs.readFile(ctx.paths.under(grubConfigPath(ctx)), 'utf8').catch(() => undefined);
  if (cfg === undefined) return undefined;
  return { cfg, menu: parseGrubMenu(cfg), env: await readGrubenv(ctx) };
}

/** The grubenv variable naming the version on trial. */
const TRIAL_VARIABLE = 'kinstall_trial';

/** The saved_entry every boot after the next restores: grub-reboot's older prev_saved_entry wins. */
const savedEntry = (env: Grubenv) => env.vars.get('prev_saved_entry') || env.vars.get('saved_entry');

/** The kernel version GRUB boots when no next_entry is set; undefined without a grub.cfg or a match. */
function defaultVersion(loader: LoaderState): string | undefined {
  return versionSelectedBy(loader.menu, defaultSelector(loader.cfg, savedEntry(loader.env)).value);
}

/** What GRUB boots by default now (before a trial: what the new grub.cfg must keep as the default). */
export async function grubDefaultVersion(ctx: Context): Promise<string | undefined> {
  const loader = await readLoader(ctx);
  return loader && defaultVersion(loader);
}

const writeGrubenv = async (txn: TransactionHandle, env: Grubenv & { file: string }) => {
  const plan = emptyPlan();
  plan.write.push({ path: env.file, content: formatGrubenv(env, env.file), mode: 0o644 });
  await txn.apply(plan);
};

/**
 * After grub-mkconfig wrote the new grub.cfg: next_entry = the trial's entry, and saved_entry pinned
 * to `previous` (the kernel that was the default) unless it selects that kernel already: unset, it
 * would select the first entry, the newest kernel, which is the trial.
 */
export async function armTrial(ctx: Context, version: string, previous: string | undefined, txn: TransactionHandle) {
  const loader = await readLoader(ctx);
  const cfgPath = ctx.paths.under(grubConfigPath(ctx));
  const next = loader && entryFor(loader.menu, version);
  if (!loader || !next) {
    throw new KinstallError('ETOOL', { tool: 'grub-mkconfig', why: `${cfgPath} has no menu entry booting ${version}` });
  }
  const { env, menu } = loader;
  const fallback =
    previous !== undefined && previous !== version
      ? previous
      : menuVersions(menu)
          .filter((v) => v !== version)
          .sort(compareVersions)
          .at(-1);
  if (fallback === undefined) {
    ctx.log.warn(`no other kernel in ${cfgPath} to fall back to: ${version} stays the default even if its trial fails`);
  } else if (versionSelectedBy(menu, savedEntry(env) ?? '') !== fallback) {
    env.vars.set('saved_entry', entryFor(menu, fallback) as string);
    env.vars.delete('prev_saved_entry');
  }
  env.vars.set('next_entry', next);
  env.vars.set(TRIAL_VARIABLE, version);
  ctx.log.info(`trial: ${version} boots next, once (next_entry=${next}); the default stays ${fallback ?? version}`);
  await writeGrubenv(txn, env);
}

/**
 * After a removal regenerated grub.cfg: a trial of the removed version that was never booted must
 * not leave next_entry behind (GRUB would boot its first entry once in its place).
 */
export async function disarmRemoved(ctx: Context, version: string, txn: TransactionHandle): Promise<void> {
  const loader = await readLoader(ctx);
  if (!loader || loader.env.vars.get(TRIAL_VARIABLE) !== version) return;
  const next = loader.env.vars.get('next_entry');
  if (next && versionSelectedBy(loader.menu, next) === undefined) loader.env.vars.delete('next_entry');
  loader.env.vars.delete(TRIAL_VARIABLE);
  ctx.log.info(`the trial of ${version} goes with it: next_entry and kinstall_trial cleared in grubenv`);
  await writeGrubenv(txn, loader.env);
}

/** A trial's own preflight problems: GRUB must boot saved_entry by default, and have a kernel to fall back to. */
async function preflight(ctx: Context, kernel: StagedKernel): Promise<string[]> {
  const problems: string[] = [];
  const setting = await readGrubDefault(ctx);
  if (setting.value !== 'saved') {
    problems.push(
      `GRUB_DEFAULT is ${setting.value === undefined ? 'unset' : `"${setting.value}"`} in ${setting.file}: a trial needs GRUB_DEFAULT=saved there (else GRUB's default is not saved_entry, and a failed trial could stay the default); set it, or install without --try`,
    );
  }
  const previous = await grubDefaultVersion(ctx);
  const others = (await listCompatKernels(ctx, 'grub')).filter((k) => k.version !== kernel.version);
  if (previous === kernel.version) {
    problems.push(
      `${kernel.version} is GRUB's default kernel now: a trial of it would replace the kernel it falls back to; install it without --try`,
    );
  } else if (others.length === 0) {
    problems.push(`no other kernel is installed in ${ctx.paths.boot} to fall back to: install ${kernel.version} without --try`);
  }
  return problems;
}

/**
 * `armed` while next_entry selects the version; `default` when GRUB's default does; `spent` when
 * grubenv's kinstall_trial still names it but next_entry no longer does (GRUB cleared it as it booted
 * the trial); undefined for a kernel that was never tried, or is not in grub.cfg.
 */
async function state(ctx: Context, version: string): Promise<TrialBootState | undefined> {
  const loader = await readLoader(ctx);
  if (!loader || !menuVersions(loader.menu).includes(version)) return undefined;
  const next = loader.env.vars.get('next_entry');
  if (next && versionSelectedBy(loader.menu, next) === version) return 'armed';
  if (defaultVersion(loader) === version) return 'default';
  return loader.env.vars.get(TRIAL_VARIABLE) === version ? 'spent' : undefined;
}

/** saved_entry = the version's entry, next_entry cleared: GRUB boots it by default from now on. */
async function confirm(ctx: Context, version: string, txn: TransactionHandle): Promise<void> {
  const loader = await readLoader(ctx);
  const entry = loader && entryFor(loader.menu, version);
  if (!loader || !entry) {
    throw new KinstallError('ENOTINSTALLED', { version, layout: 'grub' }, [
      `${ctx.paths.under(grubConfigPath(ctx))} has no menu entry booting it`,
    ]);
  }
  if (!defaultSelector(loader.cfg, undefined).usesSavedEntry) {
    ctx.log.warn(`${grubConfigPath(ctx)} does not boot saved_entry by default: set GRUB_DEFAULT=saved in /etc/default/grub`);
  }
  loader.env.vars.set('saved_entry', entry);
  loader.env.vars.delete('prev_saved_entry');
  loader.env.vars.delete('next_entry');
  loader.env.vars.delete(TRIAL_VARIABLE);
  await writeGrubenv(txn, loader.env);
}

export const grubTrial: TrialSupport = { preflight, state, confirm };
