// Every system path kinstall touches, resolved under --root. Nothing else builds host paths.
import { readlink } from 'node:fs/promises';
import path from 'node:path';

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
