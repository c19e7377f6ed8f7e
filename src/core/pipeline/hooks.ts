// User and shipped hooks: kinstall's hooks.d and Gentoo's /etc/kernel/{preinst,postinst}.d (and
// Debian's {prerm,postrm}.d on removal), run in lexical order with VERSION IMAGE; exit 77 stops the
// rest of the phase successfully.
import { access, constants, lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { scopedLog, type Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { isFile } from '../fs.js';
import { assertTrusted } from './trust.js';

/** preinst/postinst around an install, prerm/postrm around a removal (Debian's names). */
export type HookPhase = 'preinst' | 'postinst' | 'prerm' | 'postrm';

/** A failing hook in these phases stops the run before anything changed: it is rolled back. */
const BLOCKING_PHASES: HookPhase[] = ['preinst', 'prerm'];

export interface Hook {
  name: string;
  path: string;
}

export interface HookEnvironment {
  version: string;
  image: string;
  layout: string;
  initrdGenerator: string;
  stagingArea: string;
  initrd?: string;
}

/** run-parts accepts only these names, so editor backups and package-manager leftovers never run. */
const RUN_PARTS_NAME = /^[A-Za-z0-9_-]+$/;
const STOP_REMAINING = 77;

/** Directories in masking order: a later directory's file hides an earlier one of the same name. */
function hookDirectories(ctx: Context, phase: HookPhase, shippedDir: string | undefined): string[] {
  const u = ctx.paths.under;
  return [
    ...(shippedDir ? [shippedDir] : []),
    u('/usr/lib/kinstall/hooks.d'),
    u('/etc/kinstall/hooks.d'),
    u(`/usr/lib/kernel/${phase}.d`),
    u(`/etc/kernel/${phase}.d`),
  ];
}

async function isDisabled(file: string): Promise<boolean> {
  const info = await lstat(file);
  if (info.isSymbolicLink()) return (await readlink(file)) === '/dev/null';
  return info.isFile() && info.size === 0;
}

/** Masking pairs the kinstall dirs with each other and Gentoo's /usr/lib with /etc. */
export async function discoverHooks(ctx: Context, phase: HookPhase, shippedDir: string | undefined, warnSkipped = true): Promise<Hook[]> {
  const dirs = hookDirectories(ctx, phase, shippedDir);
  const families = [dirs.slice(0, dirs.length - 2), dirs.slice(dirs.length - 2)];
  const hooks: Hook[] = [];
  const log = scopedLog(ctx, phase);
  for (const family of families) {
    const byName = new Map<string, string>();
    for (const dir of family) {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (RUN_PARTS_NAME.test(name)) byName.set(name, path.join(dir, name));
      }
    }
    for (const [name, file] of byName) {
      if (await isDisabled(file)) {
        log.debug(`hook ${name} disabled by ${file}`);
        continue;
      }
      if (!(await isFile(file))) continue;
      if (!(await access(file, constants.X_OK).then(() => true, () => false))) {
        if (warnSkipped) log.warn(`skipping ${file}: not executable (chmod +x to enable it)`);
        continue;
      }
      // Whoever can replace the file or the directory holding it runs code as root.
      await assertTrusted(path.dirname(file), 'hook directory');
      await assertTrusted(file, 'hook');
      hooks.push({ name, path: file });
    }
  }
  return hooks.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.path < b.path ? -1 : 1));
}

function hookEnvironment(ctx: Context, phase: HookPhase, info: HookEnvironment): Record<string, string> {
  const verbose = ctx.request.verbose ? '1' : '0';
  const env: Record<string, string> = {
    PATH: ctx.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    KINSTALL_PHASE: phase,
    KINSTALL_VERSION: info.version,
    KINSTALL_IMAGE: info.image,
    KINSTALL_LAYOUT: info.layout,
    KINSTALL_INITRD_GENERATOR: info.initrdGenerator,
    KINSTALL_STAGING_AREA: info.stagingArea,
    KINSTALL_ROOT: ctx.paths.root,
    KINSTALL_BOOT_DIR: ctx.paths.boot,
    KINSTALL_VERBOSE: verbose,
    INSTALLKERNEL_LAYOUT: info.layout,
    INSTALLKERNEL_INITRD_GENERATOR: info.initrdGenerator,
    INSTALLKERNEL_STAGING_AREA: info.stagingArea,
    INSTALLKERNEL_VERBOSE: verbose,
    INSTALLKERNEL_ROOT: ctx.paths.root,
    KERNEL_INSTALL_LAYOUT: info.layout,
    KERNEL_INSTALL_INITRD_GENERATOR: info.initrdGenerator,
    KERNEL_INSTALL_STAGING_AREA: info.stagingArea,
    KERNEL_INSTALL_VERBOSE: verbose,
  };
  if (info.initrd) env.KINSTALL_INITRD = info.initrd;
  // Messages in the admin's language; nothing else of kinstall's environment reaches a hook.
  if (ctx.env.LANG) env.LANG = ctx.env.LANG;
  return env;
}

export interface HookOutcome {
  ran: string[];
  failed: Array<{ hook: string; status: number }>;
}

/**
 * Runs one phase's hooks. A preinst failure throws (the run rolls back); a postinst failure is
 * collected and reported, since the kernel is already in place.
 */
export async function runHooks(ctx: Context, phase: HookPhase, hooks: Hook[], info: HookEnvironment): Promise<HookOutcome> {
  const log = scopedLog(ctx, phase);
  const env = hookEnvironment(ctx, phase, info);
  const outcome: HookOutcome = { ran: [], failed: [] };
  for (const hook of hooks) {
    log.info(`running hook ${hook.path}`);
    const result = await ctx.exec.run(hook.path, [info.version, info.image], { env, explicitEnv: true, reject: false, streamOutput: true, cwd: '/' });
    outcome.ran.push(hook.path);
    if (result.exitCode === STOP_REMAINING) {
      log.info(`hook ${hook.name} exited 77: skipping the remaining ${phase} hooks`);
      break;
    }
    if (result.exitCode !== 0) {
      if (BLOCKING_PHASES.includes(phase)) {
        throw new KinstallError('EHOOK', { hook: hook.path, status: String(result.exitCode) }, result.spawnError ? [result.spawnError] : []);
      }
      log.error(`hook ${hook.path} failed with exit code ${result.exitCode}`);
      outcome.failed.push({ hook: hook.path, status: result.exitCode });
    }
  }
  return outcome;
}

/** Before anything changes: an untrusted hook of the run's phases stops it (EINSECURE). */
export async function checkHooksTrusted(ctx: Context, shippedDir: string | undefined, phases: HookPhase[] = ['preinst', 'postinst']): Promise<void> {
  for (const phase of phases) await discoverHooks(ctx, phase, shippedDir, false);
}
