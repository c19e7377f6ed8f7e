// Every system path kinstall touches, resolved under --root. Nothing else builds host paths.
import { readlink } from './quick-fs.js';
import path from 'node:path';
import { KinstallError, type ErrorCode } from './errors.js';
import { pathExists } from './fs.js';

export interface Paths {
  root: string;
  /** A system path (absolute, as on the target system) under the root. */
  under(systemPath: string): string;
  /** The same path as the target system sees it (strips the root). */
  inTarget(hostPath: string): string;
  boot: string;
  moduleDir(version: string): string;
  modulesBase: string;
  historyLog: string;
}

export function createPaths(root: string, bootDir: string): Paths {
  const absRoot = path.resolve(root);
  const under = (systemPath: string) => path.join(absRoot, path.resolve('/', systemPath));
  const inTarget = (hostPath: string) => {
    const rel = path.relative(absRoot, hostPath);
    return rel.startsWith('..') ? hostPath : `/${rel}`;
  };
  return {
    root: absRoot,
    under,
    inTarget,
    boot: under(bootDir),
    moduleDir: (version) => under(`/lib/modules/${version}`),
    modulesBase: under('/lib/modules'),
    historyLog: under('/var/log/installkernel.log'),
  };
}

/**
 * A link in the target names its target as the target system sees it (Gentoo's links in the
 * neutral location are absolute, into /usr/src): followed one step, under the root.
 */
export async function resolveInRoot(ctx: { paths: Paths }, file: string): Promise<string> {
  const target = await readlink(file).catch(() => undefined);
  if (target === undefined) return file;
  return path.isAbsolute(target) ? ctx.paths.under(target) : path.resolve(path.dirname(file), target);
}

const isInside = (file: string, dir: string) => dir === '/' || file === dir || file.startsWith(`${dir}/`);

/**
 * A directory argument the target names (installkernel's DIR, --boot-dir, --esp) as the target
 * names it: a path already inside --root loses the root (Gentoo passes DIR=${EROOT}/boot), any
 * other path already is one.
 */
export function asTargetPath(root: string, given: string): string {
  const absRoot = path.resolve(root);
  if (absRoot === '/' || !path.isAbsolute(given) || !isInside(path.resolve(given), absRoot)) return given;
  return `/${path.relative(absRoot, path.resolve(given))}`;
}

/**
 * Where kinstall reads a file argument (IMAGE, SYSTEM_MAP, --initrd, --build-dir, --modules-dir),
 * given as an absolute path (a relative one is first taken from the working directory). One rule:
 * a path already inside --root is taken as it is; else the same path inside the root when it
 * exists there (the target's /usr/src/linux-KV, as Gentoo's eclass names it); else the path on
 * the host (a build tree outside the target, as `make install` passes it).
 */
export async function locateArgument(paths: Paths, given: string): Promise<{ found?: string; tried: string[] }> {
  const file = path.resolve(given);
  const tried = paths.root === '/' || isInside(file, paths.root) ? [file] : [paths.under(file), file];
  for (const candidate of tried) if (await pathExists(candidate)) return { found: candidate, tried };
  return { tried };
}

/** locateArgument, or the error `code` naming the path and, when it looked in two places, both. */
export async function argumentPath(ctx: { paths: Paths }, given: string, code: ErrorCode): Promise<string> {
  const { found, tried } = await locateArgument(ctx.paths, given);
  if (found !== undefined) return found;
  const details = tried.length > 1 ? [`looked inside --root at ${tried[0]} and on the host at ${tried[1]}`] : [];
  throw new KinstallError(code, { path: given, dir: given, why: 'it does not exist' }, details);
}
