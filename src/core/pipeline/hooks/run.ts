// Runs one phase's hooks in their order, each as its protocol calls it. Every hook goes through
// one HookRunner (how it starts, which paths it sees): on the host, or inside the target (target.ts).
import { scopedLog, type Context } from '../../context.js';
import { KinstallError } from '../../errors.js';
import type { ExecResult } from '../../exec.js';
import { forgetTargetFiles } from '../../system/system-info.js';
import type { Hook } from './discover.js';
import { hookArguments, hookEnvironment, readKernelInstallTarget, type HookInfo, type PathView } from './environment.js';
import { BLOCKING_PHASES, STOP_REMAINING, type HookPhase } from './protocols.js';
import type { OwnStep } from './redundant.js';
import { newOutputs, snapshotStaging, type StagedOutput } from './staging.js';
import { runsInTarget, targetRunner } from './target.js';

/** How a hook is started and which paths it sees. */
export interface HookRunner {
  view(hook: Hook): PathView;
  exec(hook: Hook, args: string[], env: Record<string, string>): Promise<ExecResult>;
}

/**
 * Hooks run on the host, with host paths (under --root) in their arguments and environment: on
 * the real root, and under --root with targetHooks = "host".
 */
export function hostRunner(ctx: Context): HookRunner {
  return {
    view: () => (hostPath) => hostPath,
    exec: (hook, args, env) =>
      ctx.exec.run(hook.path, args, { env, explicitEnv: true, reject: false, streamOutput: true, cwd: '/' }),
  };
}

export interface HookOutcome {
  ran: string[];
  failed: Array<{ hook: string; status: number }>;
  /** Files hooks left in the staging area (initrd*, microcode*, uki.efi), in the order they appeared. */
  produced: StagedOutput[];
  /** kinstall's own steps a hook did instead (hooks `runRedundant` let run). */
  done: OwnStep[];
}

/** The runner for this run: the target's hooks inside the target under --root (targetHooks = "run"). */
export const hookRunnerFor = (ctx: Context): HookRunner => (runsInTarget(ctx) ? targetRunner(ctx) : hostRunner(ctx));

export const emptyOutcome = (): HookOutcome => ({ ran: [], failed: [], produced: [], done: [] });

/**
 * Runs one phase's hooks. A failure before the commit (preinst, prerm) throws: the run rolls back.
 * After it (postinst, postrm) failures are collected and reported, since the change stands.
 */
export async function runHooks(
  ctx: Context,
  phase: HookPhase,
  hooks: Hook[],
  info: HookInfo,
  runner: HookRunner = hookRunnerFor(ctx),
): Promise<HookOutcome> {
  const log = scopedLog(ctx, phase);
  const outcome = emptyOutcome();
  const target = hooks.length > 0 ? await readKernelInstallTarget(ctx) : undefined;
  for (const hook of hooks) {
    const view = runner.view(hook);
    const args = hookArguments(hook.protocol, phase, info, target, view);
    const env = hookEnvironment(ctx, hook, info, target, view);
    log.info(`running ${hook.protocol} hook ${hook.path} ${args.join(' ')}`);
    const before = await snapshotStaging(info.stagingArea);
    const result = await runner.exec(hook, args, env);
    // A hook may have written the target's configuration (/etc/kernel/cmdline): read it afresh.
    forgetTargetFiles(ctx);
    outcome.ran.push(hook.path);
    const produced = newOutputs(info.stagingArea, before, await snapshotStaging(info.stagingArea), hook.name);
    for (const output of produced) log.info(`hook ${hook.name} left ${output.file} in the staging area`);
    outcome.produced.push(...produced);
    if (result.exitCode === STOP_REMAINING) {
      log.info(`hook ${hook.name} exited 77: skipping the remaining ${phase} hooks`);
      if (hook.redoes) outcome.done.push(hook.redoes);
      break;
    }
    if (result.exitCode !== 0) {
      if (BLOCKING_PHASES.includes(phase)) {
        throw new KinstallError(
          'EHOOK',
          { hook: hook.path, status: String(result.exitCode) },
          result.spawnError ? [result.spawnError] : [],
        );
      }
      log.error(`hook ${hook.path} failed with exit code ${result.exitCode}`);
      outcome.failed.push({ hook: hook.path, status: result.exitCode });
    } else if (hook.redoes) {
      outcome.done.push(hook.redoes);
    }
  }
  return outcome;
}
