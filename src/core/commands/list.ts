// `kinstall list`: every kernel the layouts find installed (only the named layout's with --layout or
// layout=), merged by version, newest first, marked default and running (running only on the real root).
import type { Context } from '../context.js';
import type { InstalledKernel } from '../types.js';
import { Listings } from '../system/listings.js';
import { compareVersions } from '../system/versions.js';

export interface ListedKernel extends InstalledKernel {
  running: boolean;
}

export async function listKernels(ctx: Context, listings = new Listings(ctx)): Promise<ListedKernel[]> {
  const seen = new Set<string>();
  const listed: ListedKernel[] = [];
  const named = ctx.settings.layout;
  for (const layout of ctx.registry.layouts) {
    // --layout NAME (or layout=): that layout's kernels only. Settings checked that NAME is known.
    if (named !== 'auto' && layout.name !== named && !layout.aliases?.includes(named)) continue;
    // A layout that can tell it is not in use (no grub.cfg, no loader/) has nothing installed.
    if (!(await listings.inUse(layout))) continue;
    for (const kernel of await listings.list(layout)) {
      // Layouts that share files (compat, grub, lilo) would list the same kernel more than once.
      const key = `${kernel.version}\0${[...kernel.files].sort().join('\0')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      listed.push({ ...kernel, running: ctx.isHostRoot && kernel.version === ctx.runningRelease });
    }
  }
  return listed.sort((a, b) => compareVersions(b.version, a.version));
}

/** The distinct versions installed, oldest first. */
export async function installedVersions(ctx: Context, listings = new Listings(ctx)): Promise<string[]> {
  return [...new Set((await listKernels(ctx, listings)).map((k) => k.version))].sort(compareVersions);
}
