// The bls layout (alias systemd-boot), Boot Loader Specification Type #1: the kernel and initramfs
// in BOOT/TOKEN/KVER/, an entry in BOOT/loader/entries/ naming them. The loader reads entries
// itself, so there is nothing to activate and bootctl is not needed.
import path from 'node:path';
import {
  emptyPlan,
  findBootRoot,
  isPlainFile,
  pathExists,
  totalSize,
  type Context,
  type InstalledKernel,
  type Layout,
  type Plan,
  type StagedKernel,
  quickFs,
} from '../../src/core/plugin-api.js';
import { planCountedFile, versionFiles } from '../shared/bls-naming.js';
import { markBootDefault } from '../shared/boot-default.js';
import { countedTrial } from '../shared/boot-counting.js';
import {
  bootTargetProblems,
  cmdlineProblems,
  findBootTarget,
  loaderPath,
  requireBootTarget,
  type BootTarget,
} from '../shared/boot-target.js';
import { entryFields, formatEntry, parseEntry } from './entry.js';

const MODE = 0o644;
const ENTRY_EXT = '.conf';
const entriesDir = (target: BootTarget) => path.join(target.boot.dir, 'loader', 'entries');
const versionDir = (target: BootTarget, version: string) => path.join(target.boot.dir, target.token, version);

/** Entry files of this version already there: counted, uncounted, or half-way through counting. */
const versionEntries = (target: BootTarget, version: string) =>
  versionFiles(entriesDir(target), target.token, version, ENTRY_EXT);

async function plan(ctx: Context, kernel: StagedKernel): Promise<Plan> {
  const target = await requireBootTarget(ctx);
  const result = emptyPlan();
  const dir = versionDir(target, kernel.version);
  const linux = path.join(dir, 'linux');
  const initrd = path.join(dir, 'initrd');
  result.place.push({ from: kernel.image, to: linux, mode: MODE, verifiedByFirmware: true });
  // Early microcode: a copy in the version's own directory, its initrd line first. Removing the
  // version removes the copy; no other kernel's entry names it.
  const microcode = (kernel.microcode ?? []).map((from) => ({ from, to: path.join(dir, path.basename(from)), mode: MODE }));
  result.place.push(...microcode);
  if (kernel.initrd) result.place.push({ from: kernel.initrd, to: initrd, mode: MODE });
  // A stale initramfs of the same version would not match the new kernel's modules.
  else if (await pathExists(initrd)) result.remove.push(initrd);
  const initrds = [...microcode.map((m) => m.to), ...(kernel.initrd ? [initrd] : [])].map((file) =>
    loaderPath(target.boot, file),
  );
  const fields = await entryFields(ctx, kernel.version, loaderPath(target.boot, linux), initrds);
  const entry = await planCountedFile(ctx, entriesDir(target), target.token, kernel.version, ENTRY_EXT, kernel.trial);
  result.write.push({ path: entry.file, content: formatEntry(fields), mode: MODE });
  result.remove.push(...entry.replaced);
  result.image = linux;
  return result;
}

async function planRemove(ctx: Context, version: string): Promise<Plan> {
  const result = emptyPlan();
  const target = await findBootTarget(ctx);
  if (!target) return result;
  result.remove.push(...(await versionEntries(target, version)));
  const dir = versionDir(target, version);
  const names = await quickFs.readdir(dir).catch(() => undefined);
  if (names === undefined) return result;
  for (const name of names.sort()) {
    if (await isPlainFile(path.join(dir, name))) result.remove.push(path.join(dir, name));
  }
  // Emptied directories go too (kept if something else is in them), so a remove undoes an add.
  result.remove.push(dir);
  result.remove.push(path.dirname(dir));
  return result;
}

async function list(ctx: Context): Promise<InstalledKernel[]> {
  const target = await findBootTarget(ctx);
  if (!target) return [];
  const names = (await quickFs.readdir(entriesDir(target)).catch(() => [] as string[])).filter(
    (n) => n.startsWith(`${target.token}-`) && n.endsWith(ENTRY_EXT),
  );
  const kernels: InstalledKernel[] = [];
  for (const name of names.sort()) {
    const entry = path.join(entriesDir(target), name);
    const fields = parseEntry(await quickFs.readFile(entry, 'utf8').catch(() => ''));
    const version = fields.get('version')?.[0];
    const linux = fields.get('linux')?.[0];
    if (!version || !linux) continue;
    const image = path.join(target.boot.dir, linux);
    const initrds = (fields.get('initrd') ?? []).map((p) => path.join(target.boot.dir, p));
    const files = [image, ...initrds];
    kernels.push({ version, layout: 'bls', files, image, initrds, entry, size: await totalSize(files) });
  }
  await markBootDefault(target.boot.dir, kernels, (k) => path.basename(k.entry ?? ''));
  return kernels;
}

async function preflight(ctx: Context): Promise<string[]> {
  const problems = [...(await bootTargetProblems(ctx)), ...(await cmdlineProblems(ctx, 'for the boot entry'))];
  const boot = await findBootRoot(ctx);
  // Only an install that goes on writes the entry: with a problem, the warning would promise it.
  if (problems.length === 0 && boot && !(await pathExists(path.join(boot.dir, 'loader', 'loader.conf')))) {
    const written = ctx.request.dryRun ? 'would be written' : 'is written';
    ctx.log.warn(
      `${path.join(boot.dir, 'loader', 'loader.conf')} is missing: systemd-boot seems not installed; the entry ${written}, but nothing boots it until you run bootctl install`,
    );
  }
  return problems;
}

export const blsLayout: Layout = {
  name: 'bls',
  aliases: ['systemd-boot'],
  async inUse(ctx) {
    const boot = await findBootRoot(ctx);
    if (!boot) return undefined;
    for (const marker of ['loader/entries', 'loader/loader.conf']) {
      if (await pathExists(path.join(boot.dir, marker))) return `${path.join(boot.dir, marker)} exists`;
    }
    return undefined;
  },
  preflight,
  plan,
  planRemove,
  list,
  // Boot counting: the trial's entry is TOKEN-KVER+1.conf; confirm renames it without the counter.
  trial: countedTrial({ dir: entriesDir, ext: ENTRY_EXT, findTarget: findBootTarget, list }),
};
