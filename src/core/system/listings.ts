// What the layouts find installed, asked once per layout for one look at the boot dir and ESP:
// `list`, `prune` and the resolve step of `remove` ask the same layouts about the same files many
// times (prune once per kernel it removes). Valid until something changes: take a new one after.
import type { Context } from '../context.js';
import type { InstalledKernel, Layout } from '../types.js';

export class Listings {
  private readonly lists = new Map<Layout, Promise<InstalledKernel[]>>();
  private readonly uses = new Map<Layout, Promise<boolean>>();

  constructor(readonly ctx: Context) {}

  list(layout: Layout): Promise<InstalledKernel[]> {
    let listed = this.lists.get(layout);
    if (!listed) this.lists.set(layout, (listed = layout.list(this.ctx)));
    return listed;
  }

  /** A layout without `inUse` counts as in use. */
  inUse(layout: Layout): Promise<boolean> {
    if (!layout.inUse) return Promise.resolve(true);
    let used = this.uses.get(layout);
    if (!used) this.uses.set(layout, (used = layout.inUse(this.ctx).then((reason) => Boolean(reason))));
    return used;
  }
}
