// The verbs: each builds its context from the parsed options, calls the core and prints the result.
import path from 'node:path';
import { builtinPlugins } from '../../plugins/index.js';
import { createContext, requestRoot, type Context } from '../core/context.js';
import { ExitCode, KinstallError } from '../core/errors.js';
import { installKernel, type InstallResult } from '../core/commands/add.js';
import { defaultJobs, installAllKernels } from '../core/commands/install-all.js';
import { describePlan } from '../core/types.js';
import { inspectKernelImage } from '../core/system/kernel-image.js';
import { stagedVersions } from '../core/system/neutral-location.js';
import { listKernels } from '../core/commands/list.js';
import { dropLockAhead, lockAhead, lockFileUnder, withLock } from '../core/transaction/lock.js';
import { describeRecovery, recoverBeforeReading, recoverUnfinished, underLockRecovered } from '../core/transaction/recover.js';
import { describeRemoval, removeKernel } from '../core/commands/remove.js';
import { confirmKernel, kernelStatus } from '../core/commands/confirm.js';
import { TRIAL_MARKS, trialStates, warnFallbackOnce } from '../core/pipeline/trial.js';
import { pruneKernels } from '../core/commands/prune.js';
import { stageBuild } from '../core/commands/stage.js';
import { describeVerify, verifyKernel } from '../core/commands/verify.js';
import { reportError, shippedHooksDir, type Io } from './io.js';
import { buildRequest, parseJobs, type ParsedValues } from './options.js';

function printInstall(io: Io, ctx: Context, result: InstallResult): void {
  if (ctx.request.json) {
    io.stdout(`${JSON.stringify(result, null, 2)}\n`);
  } else if (ctx.request.dryRun) {
    io.stdout(`plan for ${result.version} (layout ${result.layout}, initramfs ${result.initrdGenerator}):\n`);
    for (const line of describePlan(result.plan)) io.stdout(`  ${line}\n`);
    io.stdout(result.hookOrder.length > 0 ? 'hooks, in order:\n' : 'hooks: none\n');
    for (const hook of result.hookOrder) {
      const verdict = hook.runs
        ? `run${hook.redoes ? ` (runRedundant: redoes kinstall's ${hook.redoes} step)` : ''}`
        : `skip: ${hook.reason ?? ''}`;
      io.stdout(`  ${hook.phase} ${hook.protocol} ${hook.path}: ${verdict}\n`);
    }
  }
}

const resolveFrom = (cwd: string, file: string | undefined) => (file === undefined ? undefined : path.resolve(cwd, file));

export async function add(io: Io, values: ParsedValues, args: string[], bootDir?: string): Promise<number> {
  const request = { ...buildRequest(values, io.cwd, bootDir), progress: io.stderrIsTTY === true && !values.json };
  // The lock is tried while the context is built (the config file, install.conf): taken over below.
  const ahead = request.dryRun ? undefined : lockAhead(lockFileUnder(requestRoot(request)));
  let ctx: Context;
  try {
    ctx = await createContext({ request, registry: builtinPlugins(), env: io.env });
  } catch (error) {
    await dropLockAhead(ahead);
    throw error;
  }
  return underLockRecovered(
    ctx,
    async () => {
      await warnFallbackOnce(ctx);
      const [version, image, systemMap] = args;
      const result = await installKernel(ctx, {
        version,
        image: resolveFrom(io.cwd, image),
        systemMap: resolveFrom(io.cwd, systemMap),
        initrds: (values.initrd ?? []).map((f) => path.resolve(io.cwd, f)),
        shippedHooksDir: shippedHooksDir(),
      });
      printInstall(io, ctx, result);
      return ExitCode.ok;
    },
    ahead,
  );
}

export async function stage(io: Io, values: ParsedValues, args: string[]): Promise<number> {
  if (args.length > 0)
    throw new KinstallError('EUSAGE', { what: `stage takes no arguments, found "${args.join(' ')}" (use --build-dir)` });
  const buildDir = values['build-dir'];
  if (!buildDir) throw new KinstallError('EUSAGE', { what: 'stage needs --build-dir DIR (a make O=DIR tree)' });
  const ctx = await createContext({ request: buildRequest(values, io.cwd), registry: builtinPlugins(), env: io.env });
  const result = await underLockRecovered(ctx, async () => {
    return stageBuild(ctx, path.resolve(io.cwd, buildDir), resolveFrom(io.cwd, values['modules-dir']));
  });
  if (ctx.request.json) io.stdout(`${JSON.stringify(result, null, 2)}\n`);
  else
    io.stdout(
      `staged ${result.version} in ${result.directory}${result.unchanged.length ? ` (unchanged: ${result.unchanged.join(', ')})` : ''}\n`,
    );
  return ExitCode.ok;
}

export async function inspect(io: Io, values: ParsedValues, args: string[]): Promise<number> {
  if (args.length !== 1)
    throw new KinstallError('EUSAGE', { what: 'inspect takes exactly one IMAGE (see kinstall inspect --help)' });
  const info = await inspectKernelImage(path.resolve(io.cwd, args[0] ?? ''));
  if (values.json) {
    io.stdout(`${JSON.stringify(info, null, 2)}\n`);
  } else {
    io.stdout(
      [
        `file: ${info.path}`,
        `format: ${info.format}`,
        `arch: ${info.arch}`,
        `version: ${info.version ?? 'unknown'}`,
        `efi-stub: ${info.efiStub ? 'yes' : 'no'}`,
        `size: ${info.size}`,
      ].join('\n') + '\n',
    );
  }
  return ExitCode.ok;
}

export async function list(io: Io, values: ParsedValues, args: string[]): Promise<number> {
  if (args.length > 0) throw new KinstallError('EUSAGE', { what: 'list takes no arguments' });
  const ctx = await createContext({ request: buildRequest(values, io.cwd), registry: builtinPlugins(), env: io.env });
  await recoverBeforeReading(ctx);
  const kernels = await listKernels(ctx);
  const trials = await trialStates(ctx, kernels);
  await warnFallbackOnce(ctx, kernels);
  const trialOf = (k: { version: string; layout: string }) => trials.get(`${k.version}\0${k.layout}`);
  if (ctx.request.json) {
    const listed = kernels.map((k) => ({ ...k, trial: trialOf(k) ?? null }));
    io.stdout(`${JSON.stringify(listed, null, 2)}\n`);
    return ExitCode.ok;
  }
  for (const k of kernels) {
    const trial = trialOf(k);
    const marks = [trial ? TRIAL_MARKS[trial] : '', k.isDefault ? 'default' : '', k.running ? 'running' : '']
      .filter(Boolean)
      .join(',');
    io.stdout(`${k.version}\t${k.layout}\t${k.size}\t${marks || '-'}\t${k.entry ?? k.files[0] ?? ''}\n`);
  }
  return ExitCode.ok;
}

export async function confirm(io: Io, values: ParsedValues, args: string[]): Promise<number> {
  if (args.length > 1) throw new KinstallError('EUSAGE', { what: 'confirm takes at most one VERSION' });
  const ctx = await createContext({ request: buildRequest(values, io.cwd), registry: builtinPlugins(), env: io.env });
  const result = await underLockRecovered(ctx, () => confirmKernel(ctx, args[0]));
  if (ctx.request.json) io.stdout(`${JSON.stringify(result, null, 2)}\n`);
  else if (result.layouts.length === 0) io.stdout(`${result.version}: ${result.reason ?? 'not on trial'}; nothing to confirm\n`);
  else io.stdout(`${result.dryRun ? 'would confirm' : 'confirmed'} ${result.version} (${result.layouts.join('+')})\n`);
  return ExitCode.ok;
}

export async function status(io: Io, values: ParsedValues, args: string[]): Promise<number> {
  if (args.length > 0) throw new KinstallError('EUSAGE', { what: 'status takes no arguments' });
  const ctx = await createContext({ request: buildRequest(values, io.cwd), registry: builtinPlugins(), env: io.env });
  await recoverBeforeReading(ctx);
  const kernels = await kernelStatus(ctx);
  if (ctx.request.json) io.stdout(`${JSON.stringify(kernels, null, 2)}\n`);
  else for (const k of kernels) io.stdout(`${k.version}\t${k.layout}\t${k.state}\n`);
  return ExitCode.ok;
}

export async function remove(io: Io, values: ParsedValues, args: string[]): Promise<number> {
  if (args.length !== 1) throw new KinstallError('EUSAGE', { what: 'remove takes exactly one VERSION' });
  const ctx = await createContext({ request: buildRequest(values, io.cwd), registry: builtinPlugins(), env: io.env });
  const result = await underLockRecovered(ctx, async () => {
    await warnFallbackOnce(ctx);
    return removeKernel(ctx, {
      version: args[0] ?? '',
      keepModules: values['keep-modules'] ?? false,
      shippedHooksDir: shippedHooksDir(),
    });
  });
  if (ctx.request.json) io.stdout(`${JSON.stringify(result, null, 2)}\n`);
  else if (ctx.request.dryRun) for (const line of describeRemoval(ctx, result)) io.stdout(`${line}\n`);
  return ExitCode.ok;
}

export async function prune(io: Io, values: ParsedValues, args: string[]): Promise<number> {
  if (args.length > 0) throw new KinstallError('EUSAGE', { what: 'prune takes no arguments (use --keep N)' });
  const ctx = await createContext({ request: buildRequest(values, io.cwd), registry: builtinPlugins(), env: io.env });
  const keep = ctx.settings.keep;
  if (keep === undefined) throw new KinstallError('EUSAGE', { what: 'prune needs --keep N (or keep = N in the config file)' });
  const result = await underLockRecovered(ctx, async () => {
    await warnFallbackOnce(ctx);
    return pruneKernels(ctx, { keep, protect: [], shippedHooksDir: shippedHooksDir() });
  });
  if (ctx.request.json) io.stdout(`${JSON.stringify(result, null, 2)}\n`);
  else {
    for (const r of result.removed) io.stdout(`${ctx.request.dryRun ? 'would remove' : 'removed'} ${r.version}\n`);
    io.stdout(`kept ${result.kept.join(' ') || 'none'}\n`);
  }
  return ExitCode.ok;
}

export async function recover(io: Io, values: ParsedValues, args: string[]): Promise<number> {
  if (args.length > 0) throw new KinstallError('EUSAGE', { what: 'recover takes no arguments' });
  const ctx = await createContext({ request: buildRequest(values, io.cwd), registry: builtinPlugins(), env: io.env });
  const report = await withLock(ctx, () => recoverUnfinished(ctx));
  if (ctx.request.json) io.stdout(`${JSON.stringify(report, null, 2)}\n`);
  else for (const line of describeRecovery(report)) io.stdout(`${line}\n`);
  return ExitCode.ok;
}

export async function verify(io: Io, values: ParsedValues, args: string[]): Promise<number> {
  if (args.length !== 1) throw new KinstallError('EUSAGE', { what: 'verify takes exactly one VERSION' });
  const timeout = values.timeout;
  if (timeout !== undefined && !/^[1-9][0-9]*$/.test(timeout))
    throw new KinstallError('EUSAGE', { what: `--timeout takes a whole number of seconds, found "${timeout}"` });
  const ctx = await createContext({ request: buildRequest(values, io.cwd), registry: builtinPlugins(), env: io.env });
  // Boots what is installed: a killed run's half-changed files are put back first, as list does.
  await recoverBeforeReading(ctx);
  const result = await verifyKernel(ctx, {
    version: args[0] ?? '',
    timeoutSeconds: timeout === undefined ? undefined : Number(timeout),
  });
  if (ctx.request.json) io.stdout(`${JSON.stringify(result, null, 2)}\n`);
  else for (const line of describeVerify(result)) io.stdout(`${line}\n`);
  if (result.verdict === 'pass') return ExitCode.ok;
  if (ctx.request.json) return ExitCode.verifyFailed;
  throw new KinstallError('EVERIFY', { version: result.version, why: result.verdict });
}

export async function installAll(io: Io, values: ParsedValues, bootDir?: string): Promise<number> {
  const jobs = parseJobs(values.jobs) ?? defaultJobs();
  const ctx = await createContext({ request: buildRequest(values, io.cwd, bootDir), registry: builtinPlugins(), env: io.env });
  return underLockRecovered(ctx, async () => {
    const versions = await stagedVersions(ctx);
    if (versions.length === 0)
      ctx.log.warn(`no staged kernel (no ${ctx.paths.under('/lib/modules/*/vmlinuz')}): nothing to install`);
    const failed: string[] = [];
    let unrestored: unknown;
    await installAllKernels(ctx, versions, {
      jobs,
      shippedHooksDir: shippedHooksDir(),
      onInstalled: (result) => printInstall(io, ctx, result),
      onFailed: (version, error) => {
        reportError(io, error, values.verbose ?? false);
        failed.push(version);
        // A kernel whose rollback failed outranks the partial result: the boot dir needs a look.
        if (error instanceof KinstallError && error.exitCode === ExitCode.rollbackFailed) unrestored ??= error;
      },
    });
    if (unrestored !== undefined) throw unrestored;
    if (failed.length > 0) {
      throw new KinstallError('EPARTIAL', {
        failed: String(failed.length),
        total: String(versions.length),
        versions: failed.join(', '),
      });
    }
    return ExitCode.ok;
  });
}
