// The neutral location: <root>/lib/modules/KVER/{vmlinuz,System.map,config}, layout-independent.
// Placing a kernel there never writes into the build tree and leaves files that already hold the
// same content alone (Gentoo's dist-kernels own them as symlinks into /usr/src).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp } from 'node:fs/promises';
import { readdir, readFile, readlink, realpath, stat } from '../quick-fs.js';
import path from 'node:path';
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { firstFile, isDirectory, isFile, pathExists } from '../fs.js';
import { resolveInRoot } from '../paths.js';
import { emptyPlan, type Plan } from '../types.js';
import type { Transaction } from '../transaction/transaction.js';

export interface KernelSources {
  version: string;
  image: string;
  systemMap?: string;
  config?: string;
}

/** Names of the kernel's files inside the neutral location. */
export const NEUTRAL_NAMES = { image: 'vmlinuz', systemMap: 'System.map', config: 'config' } as const;

async function digest(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function sameContent(a: string, b: string): Promise<boolean> {
  const [ra, rb] = await Promise.all([realpath(a).catch(() => undefined), realpath(b).catch(() => undefined)]);
  if (!ra || !rb) return false;
  if (ra === rb) return true;
  const [sa, sb] = await Promise.all([stat(ra), stat(rb)]);
  if (sa.size !== sb.size) return false;
  return (await digest(ra)) === (await digest(rb));
}

/** The plan that puts a kernel's files into the neutral location, skipping what is already there. */
export async function planNeutralLocation(ctx: Context, sources: KernelSources): Promise<Plan> {
  const plan = emptyPlan();
  const dir = ctx.paths.moduleDir(sources.version);
  for (const key of ['image', 'systemMap', 'config'] as const) {
    const from = sources[key];
    if (!from) continue;
    const to = path.join(dir, NEUTRAL_NAMES[key]);
    if (await sameContent(from, await resolveInRoot(ctx, to))) {
      ctx.log.debug(`${to} already holds ${from}: left untouched`);
      continue;
    }
    plan.place.push({ from, to, mode: 0o644 });
  }
  return plan;
}

/** Every version with an image in the neutral location, in name order (`installkernel --all`). */
export async function stagedVersions(ctx: Context): Promise<string[]> {
  const names = await readdir(ctx.paths.modulesBase).catch(() => [] as string[]);
  const found: string[] = [];
  for (const name of names) {
    // Gentoo's vmlinuz is an absolute link naming the target's /usr/src: followed inside the root.
    if (await isFile(await resolveInRoot(ctx, path.join(ctx.paths.moduleDir(name), NEUTRAL_NAMES.image)))) found.push(name);
  }
  return found.sort();
}

/** The list kbuild's modules_install writes beside a kernel's modules. */
const hasModulesOrder = (dir: string): Promise<boolean> => pathExists(path.join(dir, 'modules.order'));

/** Whether a lib/modules/KVER directory holds modules: a modules.order, or a kernel/ tree. */
export async function holdsModules(dir: string): Promise<boolean> {
  return (await hasModulesOrder(dir)) || isDirectory(path.join(dir, 'kernel'));
}

/** Why a directory without include/config/kernel.release is no build output, and what to give instead. */
async function whyNotBuilt(buildDir: string): Promise<string> {
  // The source tree of an out-of-tree build: Kconfig and scripts/kconfig, but the build output is elsewhere.
  if ((await isFile(path.join(buildDir, 'Kconfig'))) && (await isDirectory(path.join(buildDir, 'scripts/kconfig')))) {
    return 'it is the kernel source tree; give the make O= output directory instead: kinstall stage --build-dir OUT';
  }
  if (await isFile(path.join(buildDir, '.config')))
    return 'it is configured but was never built (no include/config/kernel.release); run make first';
  return 'no include/config/kernel.release; run make first';
}

/** Reads a kbuild output tree (`make O=DIR`): release, image, System.map and .config. */
export async function readBuildDir(buildDir: string): Promise<KernelSources> {
  const release = await readFile(path.join(buildDir, 'include/config/kernel.release'), 'utf8').catch(() => undefined);
  if (release === undefined) throw new KinstallError('ENOBUILD', { dir: buildDir, why: await whyNotBuilt(buildDir) });
  const version = release.trim();
  const image = await firstFile(
    ['arch/x86/boot/bzImage', 'arch/arm64/boot/Image', 'arch/arm64/boot/Image.gz', 'vmlinux'].map((p) => path.join(buildDir, p)),
  );
  if (!image)
    throw new KinstallError('ENOBUILD', {
      dir: buildDir,
      why: 'no arch/x86/boot/bzImage or arch/arm64/boot/Image; run make first',
    });
  return {
    version,
    image,
    systemMap: await firstFile([path.join(buildDir, 'System.map')]),
    config: await firstFile([path.join(buildDir, '.config')]),
  };
}

/** How many modules a build tree's modules.order lists (0 without one). */
export async function builtModuleCount(buildDir: string): Promise<number> {
  const order = await readFile(path.join(buildDir, 'modules.order'), 'utf8').catch(() => '');
  return order.split('\n').filter((line) => line.trim() !== '').length;
}

/** Where `make modules_install INSTALL_MOD_PATH=DIR` put the modules of a version (DIR/lib/modules/KVER). */
export async function modulesSource(modulesDir: string, version: string): Promise<string> {
  const candidates = [path.join(modulesDir, 'lib/modules', version), path.join(modulesDir, version), modulesDir];
  for (const candidate of candidates) {
    if (await hasModulesOrder(candidate)) return candidate;
  }
  throw new KinstallError('ENOBUILD', {
    dir: modulesDir,
    why: `no modules.order for ${version} (run make modules_install INSTALL_MOD_PATH=DIR)`,
  });
}

/**
 * Copies an installed modules tree into <root>/lib/modules/KVER through the transaction: each
 * top-level directory (kernel/, …) is placed whole, files and links one by one, so a failure or a
 * crash puts back exactly what was there. What the tree does not hold (the neutral files,
 * updates/) is left alone.
 */
export async function placeModulesTree(ctx: Context, txn: Transaction, source: string, version: string): Promise<void> {
  const target = ctx.paths.moduleDir(version);
  ctx.log.info(`copying modules ${source} -> ${target}`);
  const plan = emptyPlan();
  for (const entry of await readdir(source, { withFileTypes: true })) {
    const from = path.join(source, entry.name);
    const to = path.join(target, entry.name);
    if (entry.isDirectory()) {
      await txn.placeTree(to, (dir) => cp(from, dir, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true }));
    } else if (entry.isSymbolicLink()) {
      plan.link.push({ path: to, target: await readlink(from) });
    } else if (entry.isFile()) {
      plan.place.push({ from, to, mode: (await stat(from)).mode & 0o777 });
    }
  }
  await txn.apply(plan);
}

const MODULE_FILE = /\.ko(?:\.(?:gz|xz|zst))?$/;

/**
 * depmod's arguments for a version. Under --root, an absolute symlink in the modules dir names a
 * file of the target (Gentoo's vmlinuz -> /usr/src/linux-KV/…), which depmod, reading the host's
 * /usr/src, reports as `fstatat … No such file or directory`. Then the modules are found here,
 * inside the root, and named to depmod one by one, so that it scans nothing itself.
 */
export async function depmodArguments(ctx: Context, version: string): Promise<string[]> {
  const scan = ['-a', '-b', ctx.paths.root, version];
  if (ctx.isHostRoot) return scan;
  const dir = ctx.paths.moduleDir(version);
  const modules: string[] = [];
  let escaping = false;
  const walk = async (current: string, top: boolean): Promise<void> => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const file = path.join(current, entry.name);
      // depmod itself never enters build/ and source/.
      if (top && (entry.name === 'build' || entry.name === 'source')) continue;
      if (entry.isSymbolicLink()) escaping ||= path.isAbsolute(await readlink(file));
      else if (entry.isDirectory()) await walk(file, false);
      else if (entry.isFile() && MODULE_FILE.test(entry.name)) modules.push(file);
    }
  };
  await walk(dir, true);
  if (!escaping || modules.length === 0) return scan;
  ctx.log.debug(`${dir} holds absolute symlinks into the target: naming its ${modules.length} module(s) to depmod`);
  return ['-b', ctx.paths.root, version, ...modules.sort()];
}
