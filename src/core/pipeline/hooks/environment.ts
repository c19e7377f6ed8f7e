// What each protocol hands a hook: its arguments and its environment, to the letter of the caller
// it stands in for (installkernel, kernel-install, run-parts), plus kinstall's own KINSTALL_*.
import path from 'node:path';
import type { Context } from '../../context.js';
import { findBootRoot } from '../../system/boot-root.js';
import { readEntryToken, readMachineId } from '../../system/system-info.js';
import { kernelInstallVerb, type HookPhase, type HookProtocol } from './protocols.js';

/** What a run tells its hooks; paths as the host sees them (the runner maps them for the hook). */
export interface HookInfo {
  version: string;
  /** The image in the neutral location before the commit, the installed one after it. */
  image: string;
  /** kernel-install's KERNEL_IMAGE: the image being installed (the neutral location's), in both phases. */
  sourceImage: string;
  layout: string;
  initrdGenerator: string;
  ukiGenerator: string;
  stagingArea: string;
  /** KINSTALL_INITRD: the initramfs, once made. */
  initrd?: string;
  /** kernel-install's INITRD… arguments: the initramfs files given to kinstall (--initrd), else the one made. */
  initrds: string[];
  /** KERNEL_INSTALL_IMAGE_TYPE: uki, pe or unknown. */
  imageType: string;
}

/** kernel-install's view of the target: machine id, entry token, boot root (host path). */
export interface KernelInstallTarget {
  machineId: string;
  entryToken: string;
  bootRoot: string;
}

/** As kernel-install 252 decides them, read under the root: BOOT_ROOT, else /efi, /boot/efi, /boot. */
export async function readKernelInstallTarget(ctx: Context): Promise<KernelInstallTarget> {
  const machineId = (await readMachineId(ctx)) ?? 'Default';
  const entryToken = (await readEntryToken(ctx)) ?? machineId;
  const bootRoot = (await findBootRoot(ctx))?.dir ?? ctx.paths.under(ctx.settings.bootRoot ?? '/boot');
  return { machineId, entryToken, bootRoot };
}

/** Maps a host path to the path the hook sees (the identity for hooks on the host, the root stripped inside it). */
export type PathView = (hostPath: string) => string;

export function hookArguments(
  protocol: HookProtocol,
  phase: HookPhase,
  info: HookInfo,
  target: KernelInstallTarget | undefined,
  view: PathView,
): string[] {
  if (protocol !== 'kernel-install' || !target) return [info.version, view(info.image)];
  const entryDir = view(path.join(target.bootRoot, target.entryToken, info.version));
  const verb = kernelInstallVerb(phase);
  return verb === 'add'
    ? [verb, info.version, entryDir, view(info.sourceImage), ...info.initrds.map(view)]
    : [verb, info.version, entryDir];
}

/** The PATH hooks get, which is also where a hook's `# kinstall-needs:` programs are looked for. */
export const hookSearchPath = (ctx: Context): string =>
  ctx.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function hookEnvironment(
  ctx: Context,
  hook: { protocol: HookProtocol; phase: HookPhase },
  info: HookInfo,
  target: KernelInstallTarget | undefined,
  view: PathView,
): Record<string, string> {
  const verbose = ctx.request.verbose ? '1' : '0';
  const own: Record<string, string> = {
    PATH: hookSearchPath(ctx),
    KINSTALL_PHASE: hook.phase,
    KINSTALL_VERSION: info.version,
    KINSTALL_IMAGE: view(info.image),
    KINSTALL_LAYOUT: info.layout,
    KINSTALL_INITRD_GENERATOR: info.initrdGenerator,
    KINSTALL_STAGING_AREA: view(info.stagingArea),
    KINSTALL_ROOT: view(ctx.paths.root),
    KINSTALL_BOOT_DIR: view(ctx.paths.boot),
    KINSTALL_VERBOSE: verbose,
    ...(info.initrd ? { KINSTALL_INITRD: view(info.initrd) } : {}),
    // Messages in the admin's language; nothing else of kinstall's environment reaches a hook.
    ...(ctx.env.LANG ? { LANG: ctx.env.LANG } : {}),
  };
  const installkernel: Record<string, string> = {
    INSTALLKERNEL_LAYOUT: info.layout,
    INSTALLKERNEL_INITRD_GENERATOR: info.initrdGenerator,
    INSTALLKERNEL_UKI_GENERATOR: info.ukiGenerator,
    INSTALLKERNEL_STAGING_AREA: view(info.stagingArea),
    INSTALLKERNEL_VERBOSE: verbose,
    INSTALLKERNEL_ROOT: view(ctx.paths.root),
  };
  const kernelInstall: Record<string, string> = {
    KERNEL_INSTALL_LAYOUT: info.layout,
    KERNEL_INSTALL_INITRD_GENERATOR: info.initrdGenerator,
    KERNEL_INSTALL_UKI_GENERATOR: info.ukiGenerator,
    KERNEL_INSTALL_STAGING_AREA: view(info.stagingArea),
    KERNEL_INSTALL_VERBOSE: verbose,
    KERNEL_INSTALL_IMAGE_TYPE: info.imageType,
    KERNEL_INSTALL_CONF_ROOT: view(ctx.paths.under('/etc/kernel')),
    ...(target
      ? {
          KERNEL_INSTALL_MACHINE_ID: target.machineId,
          KERNEL_INSTALL_ENTRY_TOKEN: target.entryToken,
          KERNEL_INSTALL_BOOT_ROOT: view(target.bootRoot),
        }
      : {}),
  };
  switch (hook.protocol) {
    case 'installkernel':
      return { ...own, ...installkernel };
    case 'kernel-install':
      return { ...own, ...kernelInstall };
    case 'run-parts':
      return own;
    case 'kinstall':
      return { ...own, ...installkernel, ...kernelInstall };
  }
}
