// The callers kinstall stands in for: each protocol's directories per phase (in masking order), the
// names it runs, and how its hooks are called. Data only: discover.ts and run.ts read it.

/** preinst/postinst around an install, prerm/postrm around a removal (Debian's names). */
export type HookPhase = 'preinst' | 'postinst' | 'prerm' | 'postrm';

/**
 * kinstall: its own hooks.d (`HOOK VERSION IMAGE`, every phase). installkernel: Gentoo's plugins
 * (`PLUGIN VERSION IMAGE`). kernel-install: systemd's plugins (`PLUGIN add|remove VERSION
 * ENTRY_DIR_ABS [IMAGE [INITRD…]]`). run-parts: Debian's /etc/kernel/*.d (`HOOK VERSION IMAGE`): prerm.d and postrm.d everywhere,
 * preinst.d and postinst.d on a Debian target.
 */
export type HookProtocol = 'kinstall' | 'installkernel' | 'kernel-install' | 'run-parts';

/** One family of directories; a later directory's file masks an earlier one's of the same name. */
export interface HookFamily {
  protocol: HookProtocol;
  dirs: string[];
}

/**
 * A phase's families, as system paths (the caller resolves them under the root). On a Debian
 * target the phase directories are Debian's run-parts directories, in every phase; elsewhere
 * preinst.d and postinst.d are Gentoo installkernel's.
 */
export function hookFamilies(
  phase: HookPhase,
  shippedDir: string | undefined,
  under: (p: string) => string,
  debian = false,
): HookFamily[] {
  const kinstall = {
    protocol: 'kinstall' as const,
    dirs: [...(shippedDir ? [shippedDir] : []), under('/usr/lib/kinstall/hooks.d'), under('/etc/kinstall/hooks.d')],
  };
  const phaseDirs = [under(`/usr/lib/kernel/${phase}.d`), under(`/etc/kernel/${phase}.d`)];
  const kernelInstall = {
    protocol: 'kernel-install' as const,
    dirs: [under('/usr/lib/kernel/install.d'), under('/etc/kernel/install.d')],
  };
  const install = phase === 'preinst' || phase === 'postinst';
  return [kinstall, { protocol: install && !debian ? 'installkernel' : 'run-parts', dirs: phaseDirs }, kernelInstall];
}

/** A Debian target, by its os-release: ID=debian or debian in ID_LIKE (Ubuntu, Devuan…). */
export const isDebianLike = (os: Record<string, string>): boolean =>
  os.ID === 'debian' || (os.ID_LIKE ?? '').split(/\s+/).includes('debian');

/** kernel-install's verb for a phase. */
export const kernelInstallVerb = (phase: HookPhase): 'add' | 'remove' =>
  phase === 'preinst' || phase === 'postinst' ? 'add' : 'remove';

/**
 * kernel-install runs all its plugins in one go; kinstall splits them at the install point: a
 * plugin sorting before `90` (generators: 50-dracut, 60-ukify, 85-initrd) runs before the commit,
 * one from `90` on (90-loaderentry, 90-uki-copy, 95-…, 99-…) after it, where kernel-install's own
 * installing plugins sit.
 */
export const KERNEL_INSTALL_POINT = '90';

/** Exit 77 from any hook: success, and the remaining hooks of the phase are skipped. */
export const STOP_REMAINING = 77;

/** A failing hook in these phases stops the run before anything changed: it is rolled back. */
export const BLOCKING_PHASES: HookPhase[] = ['preinst', 'prerm'];
