// Which of kinstall's boot entries systemd-boot starts by default: the `default` pattern of
// loader/loader.conf when it names one (a glob on the entry's file name), else the first entry in
// systemd-boot's order, which for entries sharing a sort-key is the highest version. Boot counting
// (a trial, /etc/kernel/tries) ranks entries: good ones (no counter) first, then those with tries
// left, which boot once or a few times before they are good or bad, then bad ones (no tries left),
// which systemd-boot sorts last; a trial is not the default while it is being tried.
import path from 'node:path';
import { compareVersions, type InstalledKernel, quickFs } from '../../src/core/plugin-api.js';

/** `default` from loader.conf: undefined when absent or one of the `@saved`-style specials. */
async function defaultPattern(bootDir: string): Promise<string | undefined> {
  const text = await quickFs.readFile(path.join(bootDir, 'loader', 'loader.conf'), 'utf8').catch(() => '');
  const value = /^\s*default\s+(\S+)\s*$/m.exec(text)?.[1];
  return value && !value.startsWith('@') ? value : undefined;
}

const globToRegExp = (glob: string) =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')
      .replace(/\[!/g, '[^')}$`,
  );

/** Marks `isDefault` on the kernel systemd-boot would start; `entryId` is the entry's file name. */
export async function markBootDefault(
  bootDir: string,
  kernels: InstalledKernel[],
  entryId: (k: InstalledKernel) => string,
): Promise<void> {
  const rank = (k: InstalledKernel) => {
    const counter = /\+(\d+)(?:-\d+)?\.[A-Za-z]+$/.exec(entryId(k));
    return counter ? (Number(counter[1]) > 0 ? 1 : 2) : 0;
  };
  const ordered = [...kernels].sort((a, b) => rank(a) - rank(b) || compareVersions(b.version, a.version));
  const pattern = await defaultPattern(bootDir);
  const chosen = pattern === undefined ? ordered[0] : ordered.find((k) => globToRegExp(pattern).test(entryId(k)));
  if (chosen) chosen.isDefault = true;
}
