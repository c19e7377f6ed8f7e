// The compat file set, shared by the compat, grub and lilo layouts: Gentoo's and Debian's file names
// in the boot dir (vmlinuz-KVER, System.map-KVER, config-KVER, initramfs-KVER.img), the previous files
// of a reinstalled version kept as *.old, and the version-less vmlinuz/initramfs.img links kept
// pointing at the newest install when they exist, and moved to a remaining kernel when theirs is removed.
import path from 'node:path';
import {
  checkMountedPerFstab,
  checkWritableDir,
  compareVersions,
  emptyPlan,
  isPlainFile,
  pathExists,
  totalSize,
  type Context,
  type InstalledKernel,
  type Plan,
  type StagedKernel,
  quickFs,
} from '../../src/core/plugin-api.js';

const MODE = 0o644;

export const imagePrefix = (kernel: StagedKernel) => (kernel.imageInfo.format === 'vmlinux' ? 'vmlinux' : 'vmlinuz');

/** Boot-dir file names of one version, by role. */
export function compatNames(version: string, prefix = 'vmlinuz') {
  return {
    image: `${prefix}-${version}`,
    systemMap: `System.map-${version}`,
    config: `config-${version}`,
    initrd: `initramfs-${version}.img`,
  };
}

/** What is at the path, symlinks not followed; undefined when nothing is. */
const lstatOrUndefined = (p: string) => quickFs.lstat(p).catch(() => undefined);

/** Places `from` at `to`, first keeping what `to` holds now as `to.old`. */
async function placeKeepingOld(plan: Plan, from: string, to: string): Promise<void> {
  if (await isPlainFile(to)) plan.place.push({ from: to, to: `${to}.old`, mode: MODE });
  plan.place.push({ from, to, mode: MODE });
}

/** Moves a version-less name (vmlinuz, initramfs.img) to the new file, the old one to NAME.old. */
async function updateVersionless(plan: Plan, dir: string, name: string, targetName: string, targetFile: string): Promise<void> {
  const current = path.join(dir, name);
  const info = await lstatOrUndefined(current);
  if (!info) return;
  if (info.isSymbolicLink()) {
    const old = await quickFs.readlink(current);
    if (old === targetName) return;
    plan.link.push({ path: `${current}.old`, target: old });
    plan.link.push({ path: current, target: targetName });
  } else if (info.isFile()) {
    plan.place.push({ from: current, to: `${current}.old`, mode: MODE });
    plan.place.push({ from: targetFile, to: current, mode: MODE });
  }
}

/** The compat files for a kernel; grub and lilo build on this plan. */
export async function planCompatFiles(ctx: Context, kernel: StagedKernel): Promise<Plan> {
  const plan = emptyPlan();
  const boot = ctx.paths.boot;
  const names = compatNames(kernel.version, imagePrefix(kernel));
  const at = (name: string) => path.join(boot, name);
  await placeKeepingOld(plan, kernel.image, at(names.image));
  if (kernel.systemMap) await placeKeepingOld(plan, kernel.systemMap, at(names.systemMap));
  if (kernel.config) await placeKeepingOld(plan, kernel.config, at(names.config));
  if (kernel.initrd) {
    await placeKeepingOld(plan, kernel.initrd, at(names.initrd));
  } else if (await isPlainFile(at(names.initrd))) {
    // A stale initramfs of the same version would not match the new kernel's modules.
    plan.place.push({ from: at(names.initrd), to: `${at(names.initrd)}.old`, mode: MODE });
    plan.remove.push(at(names.initrd));
  }
  await updateVersionless(plan, boot, imagePrefix(kernel), names.image, kernel.image);
  if (kernel.initrd) await updateVersionless(plan, boot, 'initramfs.img', names.initrd, kernel.initrd);
  plan.image = at(names.image);
  return plan;
}

/** The version's files, and the version-less links moved off them. */
export async function planCompatRemove(ctx: Context, version: string): Promise<Plan> {
  const plan = emptyPlan();
  for (const prefix of ['vmlinuz', 'vmlinux']) {
    for (const name of Object.values(compatNames(version, prefix))) {
      for (const file of [name, `${name}.old`]) {
        const full = path.join(ctx.paths.boot, file);
        if ((await pathExists(full)) && !plan.remove.includes(full)) plan.remove.push(full);
      }
    }
  }
  if (plan.remove.length > 0) await planLinksAfterRemove(ctx, plan, version);
  return plan;
}

/** A version-less link and the file name its role has for a remaining kernel. */
const LINK_PAIRS: Array<{ name: string; fileOf(version: string, image: string): string }> = [
  { name: 'vmlinuz', fileOf: (_v, image) => image },
  { name: 'initramfs.img', fileOf: (v) => compatNames(v).initrd },
];

/** Where a link points, when it is a symlink; null for a regular file (left alone), undefined when absent. */
async function linkTarget(file: string): Promise<string | null | undefined> {
  const info = await lstatOrUndefined(file);
  if (!info) return undefined;
  return info.isSymbolicLink() ? quickFs.readlink(file) : null;
}

/**
 * Re-points the existing links after the plan's removals: a link to a removed (or missing) file
 * moves to the other link's file, else to the newest remaining kernel; with nothing left it goes
 * too. A link that does not exist is never created, and links to files that stay are left alone.
 */
async function planLinksAfterRemove(ctx: Context, plan: Plan, version: string): Promise<void> {
  const boot = ctx.paths.boot;
  const gone = new Set(plan.remove.map((p) => path.basename(p)));
  const valid = async (name: string | undefined) =>
    name !== undefined && !gone.has(name) && (await isPlainFile(path.join(boot, name)));
  const links = await Promise.all(
    LINK_PAIRS.map(async (pair) => {
      const currentPath = path.join(boot, pair.name);
      return { pair, currentPath, current: await linkTarget(currentPath), old: await linkTarget(`${currentPath}.old`) };
    }),
  );
  // No link to move (prune plans one removal per kernel): the boot dir need not be listed.
  if (links.every((l) => l.current === undefined && l.old === undefined)) return;
  const remaining = compatImages(await quickFs.readdir(boot).catch(() => [] as string[]))
    .filter((k) => k.version !== version)
    .sort((a, b) => compareVersions(b.version, a.version));
  for (const { pair, currentPath, current, old } of links) {
    if (current === null || old === null) continue;
    // The link's new target and the .old link's are the first two valid names: no more are looked at.
    const pool: string[] = [];
    for (const name of [current, old, ...remaining.map((k) => pair.fileOf(k.version, k.image))]) {
      if (pool.length === 2) break;
      if (name !== undefined && !pool.includes(name) && (await valid(name))) pool.push(name);
    }
    const newCurrent = current !== undefined && !(await valid(current)) ? pool[0] : current;
    const oldMoves = old !== undefined && (old === newCurrent || !(await valid(old)));
    const newOld = oldMoves ? pool.find((n) => n !== newCurrent) : old;
    for (const [file, before, after] of [
      [currentPath, current, newCurrent],
      [`${currentPath}.old`, old, newOld],
    ] as const) {
      if (before === after) continue;
      if (after === undefined) plan.remove.push(file);
      else plan.link.push({ path: file, target: after });
    }
  }
}

/** The kernel images among a boot dir's file names (not their .old), with their versions. */
function compatImages(names: string[]): Array<{ version: string; image: string }> {
  const images: Array<{ version: string; image: string }> = [];
  for (const name of names) {
    const match = /^vmlinu[zx]-(.+)$/.exec(name);
    if (match?.[1] && !name.endsWith('.old')) images.push({ version: match[1], image: name });
  }
  return images;
}

export async function listCompatKernels(ctx: Context, layout: string): Promise<InstalledKernel[]> {
  const boot = ctx.paths.boot;
  const names = await quickFs.readdir(boot).catch(() => [] as string[]);
  const kernels: InstalledKernel[] = [];
  const defaultImage = await quickFs.readlink(path.join(boot, 'vmlinuz')).catch(() => undefined);
  for (const { version, image: name } of compatImages(names)) {
    const roles = compatNames(version, name.slice(0, 7));
    const files = Object.values(roles)
      .map((n) => path.join(boot, n))
      .filter((f) => names.includes(path.basename(f)));
    const initrds = names.includes(roles.initrd) ? [path.join(boot, roles.initrd)] : [];
    kernels.push({
      version,
      layout,
      files,
      image: path.join(boot, name),
      initrds,
      size: await totalSize(files),
      isDefault: defaultImage === name,
    });
  }
  return kernels;
}

export const compatPreflight = async (ctx: Context) => [
  ...(await checkMountedPerFstab(ctx, ctx.settings.bootDir, 'boot dir')),
  ...(await checkWritableDir(ctx.paths.boot, 'boot dir')),
];
