// Preflight: every check that can fail before anything changes, all collected and reported together.
import { access, constants, lstat, readFile, realpath, stat } from '../quick-fs.js';
import path from 'node:path';
import { bootRootCandidates, type BootRoot } from '../system/boot-root.js';
import type { Context } from '../context.js';
import { errorMessage, KinstallError } from '../errors.js';
import type { Exec } from '../exec.js';
import { createLogger } from '../logger.js';
import { checkInitramfsFile } from '../system/initramfs-format.js';
import { holdsModules } from '../system/neutral-location.js';
import { signingProblems } from './sign.js';
import { archMismatch, readTargetArch } from '../system/system-info.js';
import type { InitramfsGenerator, Layout, Plan, StagedKernel } from '../types.js';

export interface PreflightSubject {
  layout: Layout;
  generator?: InitramfsGenerator;
  kernel: StagedKernel;
  /** Prebuilt initramfs files (--initrd, an initrd beside the image), checked for their format. */
  prebuiltInitrds?: string[];
}

export async function missingTools(ctx: Context, tools: string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const tool of [...new Set(tools)]) {
    if (!(await ctx.exec.which(tool))) problems.push(`${tool} is not installed (not found on PATH)`);
  }
  return problems;
}

export async function runPreflight(ctx: Context, subject: PreflightSubject): Promise<void> {
  const { layout, generator, kernel } = subject;
  const tools = [
    ...((await holdsModules(kernel.moduleDir)) ? ['depmod'] : []),
    ...(generator?.requiredTools?.(ctx) ?? []),
    ...(layout.requiredTools?.(ctx) ?? []),
  ];
  const problems = [
    ...(await checkArchitecture(ctx, layout, kernel)),
    ...(await missingTools(ctx, tools)),
    ...(await checkAreasInsideRoot(ctx)),
    ...(await checkPrebuiltInitrds(ctx, subject.prebuiltInitrds ?? [])),
    ...((await generator?.preflight?.(ctx, kernel)) ?? []),
    ...((await layout.preflight?.(ctx, kernel)) ?? []),
    ...((kernel.trial ? await layout.trial?.preflight?.(ctx, kernel) : undefined) ?? []),
    ...(await signingProblems(ctx)),
  ];
  // Only a layout whose own checks passed can plan (it needs its boot root, token, ...).
  if (problems.length === 0) problems.push(...(await previewPlanTargets(ctx, layout, kernel)));
  throwProblems(problems);
}

/**
 * A prebuilt initramfs the kernel cannot unpack (cut short by a full disk, not an initramfs at all)
 * is not refused by the kernel: it boots on without it and panics at the root. Checked here.
 */
async function checkPrebuiltInitrds(ctx: Context, files: string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const file of files) {
    const { corrupt, untested } = await checkInitramfsFile(ctx.exec, file);
    if (corrupt)
      problems.push(`initramfs ${file} is truncated or corrupt: ${corrupt} (rebuild it, or leave out --initrd to generate one)`);
    for (const part of untested) ctx.log.warn(`cannot test the ${part} stream of ${file}`);
  }
  return problems;
}

/**
 * Every problem found, as one EPREFLIGHT, each said once: a single problem in the one-line message
 * (its example, on the lines after its first, in the details); several, one per detail line.
 */
export function throwProblems(problems: string[]): void {
  if (problems.length === 0) return;
  if (problems.length === 1) {
    const [summary = '', ...example] = (problems[0] ?? '').split('\n');
    // Its following lines are indented for the "  " a detail line gets: each detail gets it again.
    throw new KinstallError(
      'EPREFLIGHT',
      { count: '1', summary },
      example.map((line) => line.replace(/^ {2}/, '')),
    );
  }
  throw new KinstallError('EPREFLIGHT', { count: String(problems.length), summary: 'each is listed below' }, problems);
}

/** The kernel must run the target's programs, and the layout's bootloader must boot it. */
async function checkArchitecture(ctx: Context, layout: Layout, kernel: StagedKernel): Promise<string[]> {
  const arch = kernel.imageInfo.arch;
  const problems: string[] = [];
  const mismatch = archMismatch(arch, await readTargetArch(ctx));
  if (mismatch) problems.push(`${mismatch} (${ctx.paths.root}): install a kernel built for the target`);
  if (layout.architectures && arch !== 'unknown' && !layout.architectures.includes(arch)) {
    problems.push(`the ${layout.name} layout boots ${layout.architectures.join('/')} kernels only; this image is ${arch}`);
  }
  return problems;
}

/**
 * The places kinstall writes and deletes under --root (the boot dir, the ESP named by --esp or
 * BOOT_ROOT, the neutral location /lib/modules) must resolve inside the root: a symlink leading out
 * would put the kernel on, or delete it from, another system (the host's /boot, its ESP).
 */
export async function checkAreasInsideRoot(ctx: Context): Promise<string[]> {
  if (ctx.isHostRoot) return [];
  const root = await realpath(ctx.paths.root).catch(() => ctx.paths.root);
  const areas: Array<[string, string]> = [
    ['boot dir', ctx.paths.boot],
    ...(ctx.settings.bootRoot ? [['ESP', ctx.paths.under(ctx.settings.bootRoot)] as [string, string]] : []),
    ['modules dir', ctx.paths.modulesBase],
  ];
  const problems: string[] = [];
  for (const [what, dir] of areas) {
    const real = await realpath(dir).catch(() => undefined);
    if (!real || real === root || real.startsWith(`${root}/`)) continue;
    problems.push(`${what} ${dir} leads to ${real}, outside ${root} (replace the symlink with a directory or mount)`);
  }
  return problems;
}

/**
 * Plan targets must be files or absent: a directory in the way would fail half-way through the
 * commit. With a context, every path the plan writes, links or removes must stay inside its area.
 */
export async function planTargetProblems(plan: Plan, ctx?: Context): Promise<string[]> {
  const targets = [...plan.place.map((p) => p.to), ...plan.write.map((w) => w.path), ...plan.link.map((l) => l.path)];
  const problems: string[] = [];
  for (const target of targets) {
    const info = await lstat(target).catch(() => undefined);
    if (info?.isDirectory()) problems.push(`${target} is a directory, where the new file goes (move it away)`);
  }
  if (ctx) problems.push(...(await checkTargetsStayInside(ctx, [...targets, ...plan.remove])));
  return problems;
}

/** planTargetProblems as a step: install checks its final plan, remove its removal plan. */
export async function checkPlanTargets(plan: Plan, ctx?: Context): Promise<void> {
  throwProblems(await planTargetProblems(plan, ctx));
}

/** The context a preview plan runs in: as under --dry-run (only read-only probes run), and silent. */
function previewContext(ctx: Context): Context {
  const log = createLogger({ verbose: false, quiet: true });
  log.silent = true;
  const exec: Exec = {
    ...ctx.exec,
    run: (file, args, options) =>
      options?.readOnly
        ? ctx.exec.run(file, args, options)
        : Promise.resolve({ exitCode: 0, stdout: '', stderr: '', failed: false }),
    which: (name) => ctx.exec.which(name),
  };
  return { ...ctx, request: { ...ctx.request, dryRun: true }, exec, log };
}

/**
 * The plan's targets, checked before anything is staged or generated: the layout plans once as
 * under --dry-run (no command runs, a UKI is not built), so a directory where the kernel goes is
 * reported before the preinst hooks and dracut run. The plan made after them is checked again.
 * A plan that cannot be made yet is left to the plan step, which fails the same way.
 */
export async function previewPlanTargets(ctx: Context, layout: Layout, kernel: StagedKernel): Promise<string[]> {
  let plan: Plan;
  try {
    plan = await layout.plan(previewContext(ctx), kernel);
  } catch (error) {
    ctx.log.debug(`preview of the ${layout.name} plan failed (left to the plan step): ${errorMessage(error)}`);
    return [];
  }
  return planTargetProblems(plan, ctx);
}

/** A shared check for layouts that write into a directory: it exists, is a directory, is writable. */
export async function checkWritableDir(dir: string, what: string): Promise<string[]> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) return [`${what} ${dir} does not exist (create it, or mount the boot partition)`];
  if (!info.isDirectory()) return [`${what} ${dir} is not a directory`];
  if (
    !(await access(dir, constants.W_OK).then(
      () => true,
      () => false,
    ))
  )
    return [`${what} ${dir} is not writable (mounted read-only?)`];
  return [];
}

/** Mount points /etc/fstab declares (second field), as the target names them. */
async function fstabMountPoints(ctx: Context): Promise<string[]> {
  const text = await readFile(ctx.paths.under('/etc/fstab'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim().split(/\s+/))
    .filter((fields) => fields.length >= 2 && !(fields[3] ?? '').split(',').includes('noauto'))
    .map((fields) => (fields[1] ?? '').replace(/\\040/g, ' '));
}

/**
 * The classic way to lose a kernel: /boot is a separate partition in fstab but not mounted, so the
 * install lands on the root filesystem underneath it and the bootloader never sees it.
 */
export async function checkMountedPerFstab(ctx: Context, targetPath: string, what: string): Promise<string[]> {
  if (!(await fstabMountPoints(ctx)).includes(targetPath)) return [];
  const dir = ctx.paths.under(targetPath);
  const [self, parent] = await Promise.all([stat(dir).catch(() => undefined), stat(path.dirname(dir)).catch(() => undefined)]);
  if (!self || !parent || self.dev !== parent.dev) return [];
  return [`${what} ${dir} is listed in /etc/fstab but not mounted (run: mount ${targetPath})`];
}

/**
 * An ESP (or XBOOTLDR) listed in /etc/fstab but not mounted: the kernel would land on the root
 * filesystem under the mount point, where the firmware never looks. Checked: --esp/BOOT_ROOT when
 * given, else every candidate up to the boot root found (all of them when none was found), since
 * an unmounted /efi lets the search fall through to /boot/efi or /boot.
 */
export async function checkBootRootMounted(ctx: Context, boot: BootRoot | undefined, what = 'ESP'): Promise<string[]> {
  const explicit = ctx.settings.bootRoot;
  const candidates = bootRootCandidates();
  const found = boot ? candidates.indexOf(boot.targetPath) : -1;
  const places = explicit
    ? [path.posix.normalize(explicit).replace(/(.)\/$/, '$1')]
    : found >= 0
      ? candidates.slice(0, found + 1)
      : candidates;
  const problems: string[] = [];
  for (const place of places) problems.push(...(await checkMountedPerFstab(ctx, place, what)));
  return problems;
}

/** The deepest existing directory on the way to a path, resolved: where a write there really lands. */
async function realParent(file: string): Promise<string | undefined> {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const real = await realpath(dir).catch(() => undefined);
    if (real !== undefined) return path.join(real, path.relative(dir, path.dirname(file)));
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * A symlinked directory inside the boot dir or ESP must not carry a write or delete elsewhere: each
 * target's parent, resolved, stays inside the area (boot dir, ESP, else the root) it is named under.
 */
async function checkTargetsStayInside(ctx: Context, targets: string[]): Promise<string[]> {
  const within = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);
  const areas = [ctx.paths.boot, ...(ctx.settings.bootRoot ? [ctx.paths.under(ctx.settings.bootRoot)] : []), ctx.paths.root].sort(
    (a, b) => b.length - a.length,
  );
  const problems: string[] = [];
  for (const target of targets) {
    const area = areas.find((a) => within(target, a));
    if (!area || (ctx.isHostRoot && area === ctx.paths.root)) continue;
    const [realArea, real] = await Promise.all([realpath(area).catch(() => area), realParent(target)]);
    if (real && !within(real, realArea))
      problems.push(
        `${target} would land in ${real}, outside ${realArea} (a symlinked directory on the way; replace it with a real directory)`,
      );
  }
  return problems;
}
