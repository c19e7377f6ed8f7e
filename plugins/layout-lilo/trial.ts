// The lilo layout's trial: the map's default stays the previous kernel's label (vmlinuz.old's, `-D`)
// and `lilo -R` makes the next boot, once, start the new kernel's (vmlinuz's). The boot loader
// erases that one-shot command line when it uses it, so every later boot is the default again.
import path from 'node:path';
import {
  KinstallError,
  type Context,
  type StagedKernel,
  type TransactionHandle,
  type TrialBootState,
  type TrialSupport,
  quickFs,
} from '../../src/core/plugin-api.js';
import { confDefaultLabel, liloCommand, liloConfig, readLiloConf, versionlessPaths, type LiloConf } from './conf.js';
import { liloArgs, runLilo, setNextBoot } from './run.js';

const bootsVersion = (file: string, version: string) => new RegExp(`^vmlinu[zx]-${version.replace(/\W/g, '\\$&')}$`).test(file);

/** The labels of image=/boot/vmlinuz (the new kernel) and image=/boot/vmlinuz.old (the one before). */
function trialLabels(ctx: Context, conf: LiloConf) {
  const p = versionlessPaths(ctx);
  return { current: conf.labels.get(p.image), old: conf.labels.get(p.imageOld) };
}

/** The label whose image= resolves (in the root) to `version`'s kernel. */
async function labelBooting(ctx: Context, conf: LiloConf, version: string): Promise<string | undefined> {
  for (const image of conf.images) {
    const real = await quickFs.realpath(ctx.paths.under(image)).catch(() => undefined);
    if (real && bootsVersion(path.basename(real), version)) return conf.labels.get(image);
  }
  return undefined;
}

/** Arms the trial after the install's files are in place: default = the old label, next boot once = the new one. */
export async function armTrial(ctx: Context, txn: TransactionHandle): Promise<void> {
  const conf = await readLiloConf(ctx);
  const labels = conf && trialLabels(ctx, conf);
  if (!labels?.current || !labels.old) {
    throw new KinstallError('ETOOL', { tool: 'lilo', why: `${liloConfig(ctx)} lost its vmlinuz or vmlinuz.old label` });
  }
  await runLilo(ctx, txn, labels.old);
  await setNextBoot(ctx, labels.current);
  ctx.log.info(`trial: lilo boots ${labels.current} next, once; the default stays ${labels.old}`);
}

/** What activation will run for a trial, for the plan's notes. */
export async function trialNote(ctx: Context): Promise<string> {
  const conf = await readLiloConf(ctx);
  const labels = conf ? trialLabels(ctx, conf) : { current: undefined, old: undefined };
  const command = liloCommand(ctx);
  const run = (args: string[]) => [command, ...args].join(' ');
  return `then run ${run(liloArgs(ctx, ['-D', labels.old ?? '?']))} and ${run([...liloArgs(ctx, []), '-R', labels.current ?? '?'])}`;
}

/** lilo.conf must label both version-less images, and vmlinuz must name another kernel now (it becomes vmlinuz.old). */
async function preflight(ctx: Context, kernel: StagedKernel): Promise<string[]> {
  const conf = await readLiloConf(ctx);
  if (!conf) return []; // the layout's own preflight reports the missing lilo.conf
  const p = versionlessPaths(ctx);
  const file = ctx.paths.under(liloConfig(ctx));
  const problems: string[] = [];
  if (!conf.labels.has(p.imageOld)) {
    problems.push(
      `${file} has no image=${p.imageOld}: a trial falls back to it; add a section "image=${p.imageOld}" with "label=linux.old" and "optional" (and the root= and initrd=${p.initrdOld} of the ${p.image} section), or install without --try`,
    );
  }
  const link = path.join(ctx.paths.boot, 'vmlinuz');
  const info = await quickFs.lstat(link).catch(() => undefined);
  const target = info?.isSymbolicLink() ? await quickFs.readlink(link) : undefined;
  if (!info) {
    problems.push(`${link} does not exist: there is no kernel to fall back to; install ${kernel.version} without --try`);
  } else if (target !== undefined && bootsVersion(path.basename(target), kernel.version)) {
    problems.push(
      `${link} boots ${kernel.version} now: a trial of it would replace the kernel it falls back to; install it without --try`,
    );
  }
  return problems;
}

/**
 * What `lilo -q` shows: the mapped labels, the default marked `*`. The one-shot label of `-R` is not
 * part of it (lilo keeps it in the map's first sector and -q does not print it), so a trial whose
 * label is not the default is `armed` (it may have been used and failed: lilo cannot tell), except
 * when it is the kernel running now: then its one boot is `spent`. Undefined when no label boots it.
 */
async function state(ctx: Context, version: string): Promise<TrialBootState | undefined> {
  const conf = await readLiloConf(ctx);
  const label = conf && (await labelBooting(ctx, conf, version));
  if (!conf || !label) return undefined;
  const query = await ctx.exec.run(liloCommand(ctx), liloArgs(ctx, ['-q']), { reject: false, readOnly: true });
  if (query.exitCode !== 0) return undefined;
  const defaultLabel = query.stdout
    .split('\n')
    .find((l) => /\*\s*$/.test(l))
    ?.trim()
    .split(/\s+/)[0];
  if (defaultLabel === label) return 'default';
  const { current, old } = trialLabels(ctx, conf);
  if (label !== current || defaultLabel !== old) return undefined;
  return ctx.isHostRoot && ctx.runningRelease === version ? 'spent' : 'armed';
}

/** The map rewritten with `version`'s label as default (lilo.conf's own default when it is that); a rollback restores the old label. */
async function confirm(ctx: Context, version: string, txn: TransactionHandle): Promise<void> {
  const conf = await readLiloConf(ctx);
  const label = conf && (await labelBooting(ctx, conf, version));
  if (!conf || !label) {
    throw new KinstallError('ENOTINSTALLED', { version, layout: 'lilo' }, [
      `no image= in ${ctx.paths.under(liloConfig(ctx))} boots it`,
    ]);
  }
  const old = trialLabels(ctx, conf).old;
  await runLilo(ctx, txn, label === confDefaultLabel(conf) ? undefined : label, old === label ? undefined : old);
}

export const liloTrial: TrialSupport = { preflight, state, confirm };
