// Picks the layout and the initramfs generator: explicit names win; `auto` asks the layouts'
// claimsImage() and inUse() in registry order, else takes the declared fallback, and logs why.
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { Listings } from '../system/listings.js';
import type { InitramfsGenerator, KernelImageInfo, Layout } from '../types.js';

function findLayout(ctx: Context, name: string): Layout {
  const layout = ctx.registry.layouts.find((l) => l.name === name || l.aliases?.includes(name));
  if (!layout) {
    const known = ctx.registry.layouts.map((l) => l.name).join(', ');
    throw new KinstallError('ECONFIG', { what: `unknown layout "${name}" (known: auto, ${known})` });
  }
  return layout;
}

/**
 * Why `layout` fits, or undefined: for an install, a layout that can claim images fits only an
 * image it claims, any other one when it is in use; without an image, when it is in use.
 */
async function autoReason(ctx: Context, layout: Layout, image?: KernelImageInfo): Promise<string | undefined> {
  if (image && layout.claimsImage) return layout.claimsImage(ctx, image);
  return layout.inUse?.(ctx);
}

export async function chooseLayout(ctx: Context, image?: KernelImageInfo): Promise<Layout> {
  if (ctx.settings.layout !== 'auto') return findLayout(ctx, ctx.settings.layout);
  for (const layout of ctx.registry.layouts) {
    const reason = await autoReason(ctx, layout, image);
    if (reason) {
      ctx.log.info(`layout=auto: chose ${layout.name}: ${reason}`);
      return layout;
    }
  }
  const fallback = ctx.registry.layouts.find((l) => l.fallback);
  if (!fallback)
    throw new KinstallError('ECONFIG', { what: 'layout=auto matched no layout and no fallback layout is registered' });
  ctx.log.info(`layout=auto: chose ${fallback.name}: no other layout detected`);
  return fallback;
}

/**
 * The layouts a kernel version is installed in, for remove: with layout=auto every layout in use
 * whose list() holds the version, skipping one whose files an earlier one already covers (grub and
 * compat share theirs); an explicit layout is taken as named.
 */
export async function layoutsHolding(ctx: Context, version: string, listings = new Listings(ctx)): Promise<Layout[]> {
  if (ctx.settings.layout !== 'auto') return [findLayout(ctx, ctx.settings.layout)];
  const chosen: Layout[] = [];
  const covered = new Set<string>();
  for (const layout of ctx.registry.layouts) {
    if (!(await listings.inUse(layout))) continue;
    const files = (await listings.list(layout)).filter((k) => k.version === version).flatMap((k) => k.files);
    if (files.length === 0 || files.every((f) => covered.has(f))) continue;
    for (const file of files) covered.add(file);
    ctx.log.info(`layout=auto: ${version} is installed in the ${layout.name} layout`);
    chosen.push(layout);
  }
  return chosen.length > 0 ? chosen : [await chooseLayout(ctx)];
}

export async function chooseGenerator(ctx: Context): Promise<InitramfsGenerator | undefined> {
  const { generators } = ctx.registry;
  const name = ctx.settings.initrdGenerator;
  if (name !== 'auto') {
    const generator = generators.find((g) => g.name === name);
    if (!generator) throw new KinstallError('ECONFIG', { what: `unknown initramfs generator "${name}"` });
    return generator;
  }
  // auto: the first generator whose tools are installed, else one that needs none.
  for (const generator of generators) {
    const tools = generator.requiredTools?.(ctx) ?? [];
    if (tools.length === 0) continue;
    if ((await Promise.all(tools.map((t) => ctx.exec.which(t)))).every(Boolean)) {
      ctx.log.info(`initrd_generator=auto: chose ${generator.name}`);
      return generator;
    }
  }
  return generators.find((g) => (g.requiredTools?.(ctx) ?? []).length === 0);
}
