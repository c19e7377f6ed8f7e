// Running lilo for the target: the map rewritten from the files as they are (with a default label
// other than lilo.conf's when asked), the one-shot label for the next boot, and the re-run a rollback needs.
import type { Context, TransactionHandle } from '../../src/core/plugin-api.js';
import { liloCommand, liloConfig, liloOptions } from './conf.js';

/** `lilo -C CONF`, with `-r ROOT` under another root: lilo chroots there before reading anything. */
export function liloArgs(ctx: Context, extra: string[]): string[] {
  return [...extra, ...(ctx.isHostRoot ? [] : ['-r', ctx.paths.root]), '-C', liloConfig(ctx)];
}

const defaultArgs = (defaultLabel: string | undefined) => (defaultLabel === undefined ? [] : ['-D', defaultLabel]);

/** lilo's map written from the files as they are now (`lilo -t` first unless testFirst is false); `-D LABEL` when given. */
export async function rewriteMap(ctx: Context, defaultLabel?: string): Promise<void> {
  const command = liloCommand(ctx);
  if (liloOptions(ctx).testFirst !== false) await ctx.exec.run(command, liloArgs(ctx, ['-t', ...defaultArgs(defaultLabel)]));
  await ctx.exec.run(command, liloArgs(ctx, defaultArgs(defaultLabel)), { streamOutput: true });
}

/** `lilo -R LABEL`: the next boot, once, starts LABEL. lilo takes every word after -R as that command line, so it goes last. */
export async function setNextBoot(ctx: Context, label: string): Promise<void> {
  await ctx.exec.run(liloCommand(ctx), [...liloArgs(ctx, []), '-R', label]);
}

/**
 * Registers the re-run a rollback needs, then rewrites the map. The re-run rewrites the whole map
 * (from lilo.conf's default, or `-D rollbackDefault`), which also drops a one-shot label set since.
 * A recovery after a crash does the same from the note: lilo's `recover`.
 */
export async function runLilo(
  ctx: Context,
  txn: TransactionHandle,
  defaultLabel?: string,
  rollbackDefault?: string,
): Promise<void> {
  const command = liloCommand(ctx);
  txn.onRollback(
    async () => {
      ctx.log.warn(`running ${command} again on the restored files, so the boot map matches them`);
      await ctx.exec.run(command, liloArgs(ctx, defaultArgs(rollbackDefault)), { streamOutput: true });
    },
    rollbackDefault === undefined ? undefined : { default: rollbackDefault },
  );
  await rewriteMap(ctx, defaultLabel);
}

/** The default label a rollback note (from runLilo) asks a recovery to restore. */
export function noteDefault(note: unknown): string | undefined {
  const value = note !== null && typeof note === 'object' ? (note as { default?: unknown }).default : undefined;
  return typeof value === 'string' ? value : undefined;
}
