// The hook steps of `kinstall add`: every hook found before anything changes (and whether the
// target can run its own), preinst and postinst run, and the outputs preinst hooks leave in the
// staging area taken as the initramfs or the UKI (the staging-area contract, docs/hooks.md).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { discoverHooks, type Hook } from '../pipeline/hooks/discover.js';
import type { HookInfo } from '../pipeline/hooks/environment.js';
import { runHooks, type HookOutcome } from '../pipeline/hooks/run.js';
import type { StagedOutput } from '../pipeline/hooks/staging.js';
import { checkTargetHooks } from '../pipeline/hooks/target.js';
import { inspectKernelImage } from '../system/kernel-image.js';
import type { Layout } from '../types.js';
import { generatorName, OWN_INITRD, resolvedOf, type InstallState } from './add-steps.js';

function hookInfo(state: InstallState, image: string, afterCommit: boolean): HookInfo {
  const resolved = resolvedOf(state);
  const { kernel, prebuiltInitrds } = resolved;
  // kernel-install's INITRD arguments: what kinstall was given, else its own initramfs once made
  // (one a hook made is in the staging area already, where kernel-install's plugins look).
  const own = afterCommit && kernel.initrd && !state.initrdFromHooks ? [kernel.initrd] : [];
  return {
    version: kernel.version,
    image,
    sourceImage: kernel.image,
    layout: resolved.layout.name,
    initrdGenerator: generatorName(resolved),
    ukiGenerator: state.ctx.settings.ukiGenerator ?? '',
    stagingArea: state.stagingArea,
    initrd: kernel.initrd,
    initrds: prebuiltInitrds.length > 0 ? prebuiltInitrds : own,
    imageType: kernel.imageInfo.format === 'uki' ? 'uki' : kernel.imageInfo.efiStub ? 'pe' : 'unknown',
  };
}

function hookOrderOf(state: InstallState): NonNullable<InstallState['hookOrder']> {
  if (!state.hookOrder) throw new Error('a hook phase ran before the hooks step');
  return state.hookOrder;
}

/** A generator named in the settings that kinstall lacks must be made by a preinst hook named after it. */
function requireGeneratorHook(
  ctx: Context,
  preinstHooks: Hook[],
  key: 'initrd_generator' | 'uki_generator',
  name: string,
  known: string[],
): void {
  if (preinstHooks.some((h) => h.name.toLowerCase().includes(name.toLowerCase()))) return;
  const output = key === 'uki_generator' ? 'UKI' : 'initramfs';
  throw new KinstallError('EGENERATOR', { key, name, output }, [
    `no preinst hook whose file name contains "${name}" would run (looked in /usr/lib/kernel/preinst.d, /etc/kernel/preinst.d, /usr/lib/kernel/install.d, /etc/kernel/install.d and kinstall's hooks.d)`,
    `install the package that ships ${name}'s plugin, or set ${key} to one of: ${known.join(', ')}`,
  ]);
}

/** uki_generator names a generator the layout does not have (ukify for the uki layout, which has dracut). */
function foreignUkiGenerator(ctx: Context, layout: Layout): string | undefined {
  const name = ctx.settings.ukiGenerator;
  return name && layout.ukiGenerators && !layout.ukiGenerators.includes(name) ? name : undefined;
}

/**
 * Before anything changes: every hook of both phases found (an untrusted one stops the run,
 * EINSECURE), the target able to run its own under --root (ETARGETHOOKS), and a generator
 * kinstall does not have (initrd_generator, the layout's uki_generator) one some preinst hook is
 * named after (EGENERATOR).
 */
export async function findHooks(state: InstallState): Promise<void> {
  const { ctx } = state;
  const resolved = resolvedOf(state);
  const options = { shippedDir: state.input.shippedHooksDir, layout: resolved.layout.name };
  state.hookOrder = {
    preinst: await discoverHooks(ctx, 'preinst', options),
    postinst: await discoverHooks(ctx, 'postinst', options),
  };
  await checkTargetHooks(ctx, [...state.hookOrder.preinst.run, ...state.hookOrder.postinst.run], state.stagingArea);
  const preinstHooks = state.hookOrder.preinst.run;
  if (resolved.foreignGenerator) {
    requireGeneratorHook(
      ctx,
      preinstHooks,
      'initrd_generator',
      resolved.foreignGenerator,
      ctx.registry.generators.map((g) => g.name),
    );
  }
  state.foreignUkiGenerator = foreignUkiGenerator(ctx, resolved.layout);
  if (state.foreignUkiGenerator) {
    requireGeneratorHook(ctx, preinstHooks, 'uki_generator', state.foreignUkiGenerator, [
      ...(resolved.layout.ukiGenerators ?? []),
    ]);
  }
}

export async function preinst(state: InstallState): Promise<void> {
  // The initramfs is made after these hooks: they get no KINSTALL_INITRD.
  const info = { ...hookInfo(state, resolvedOf(state).kernel.image, false), initrd: undefined };
  state.preinst = await runHooks(state.ctx, 'preinst', hookOrderOf(state).preinst.run, info);
  await adoptHookOutputs(state, state.preinst);
}

/**
 * A uki.efi the layout claims (the uki layout claims a Unified Kernel Image) is the image it
 * installs: it carries its own initramfs, so none is generated. Any other layout ignores it.
 */
async function adoptUki(state: InstallState, uki: StagedOutput): Promise<void> {
  const { ctx } = state;
  const { layout, kernel } = resolvedOf(state);
  const info = await inspectKernelImage(uki.file).catch(() => undefined);
  const claim = info ? await layout.claimsImage?.(ctx, info) : undefined;
  if (!claim) {
    ctx.log.warn(
      `hook ${uki.hook} left ${uki.file}, which layout ${layout.name} does not install (${info ? 'not an image it takes' : 'not a kernel image'})`,
    );
    return;
  }
  ctx.log.info(`UKI made by hook ${uki.hook}: ${uki.file} (${claim}); no initramfs is generated for it`);
  kernel.initrd = undefined;
  state.initrdFromHooks = [uki.hook];
}

/**
 * The staging-area contract: initrd files a preinst hook left become the initramfs (microcode
 * first, then the initrd files in name order, as one file when there are several), and kinstall's
 * own generator does not run. A uki.efi is the uki layout's to take from the staging area.
 */
async function adoptHookOutputs(state: InstallState, outcome: HookOutcome): Promise<void> {
  const { ctx } = state;
  const resolved = resolvedOf(state);
  const { kernel } = resolved;
  const named = (prefix: string) => outcome.produced.filter((o) => path.basename(o.file).startsWith(prefix));
  for (const uki of named('uki.efi')) await adoptUki(state, uki);
  if (state.foreignUkiGenerator && !named('uki.efi').length) {
    throw new KinstallError('ENOTPRODUCED', { key: 'uki_generator', name: state.foreignUkiGenerator, output: 'a uki.efi' });
  }
  if (state.initrdFromHooks) return;
  const initrds = [...new Map(named('initrd').map((o) => [o.file, o])).values()].sort((a, b) => (a.file < b.file ? -1 : 1));
  const microcode = [...new Map(named('microcode').map((o) => [o.file, o])).values()];
  if (initrds.length === 0) {
    if (resolved.foreignGenerator) throw new KinstallError('ENOTPRODUCED', { name: resolved.foreignGenerator });
    // Microcode alone is loaded before whatever initramfs the layout boots, as the boot dir's is.
    kernel.microcode = [...(kernel.microcode ?? []), ...microcode.map((o) => o.file)];
    return;
  }
  if (resolved.prebuiltInitrds.length > 0) {
    ctx.log.warn(
      `ignoring the initramfs hook(s) ${initrds.map((o) => o.hook).join(', ')} left: the initramfs given (${resolved.prebuiltInitrds.join(', ')}) wins`,
    );
    return;
  }
  const parts = [...microcode, ...initrds];
  if (parts.length === 1) {
    kernel.initrd = initrds[0]?.file;
  } else {
    kernel.initrd = path.join(state.stagingArea, OWN_INITRD);
    await writeFile(kernel.initrd, Buffer.concat(await Promise.all(parts.map((o) => readFile(o.file)))));
  }
  kernel.initrdGenerator = 'prebuilt';
  state.initrdFromHooks = [...new Set(parts.map((o) => o.hook))];
  ctx.log.info(
    `initramfs made by hook ${state.initrdFromHooks.join(', ')} (${parts.map((o) => path.basename(o.file)).join(' + ')}): kinstall's generator does not run`,
  );
}

export async function postinst(state: InstallState): Promise<void> {
  const image = state.plan.image ?? resolvedOf(state).kernel.image;
  state.postinst = await runHooks(state.ctx, 'postinst', hookOrderOf(state).postinst.run, hookInfo(state, image, true));
}
