// dracut as the dracut generator and the uki layout (dracut --uefi) both run it: the `dracut`
// section of the config file and the arguments every dracut run gets.
import { pluginOptions, type Context, type OptionSchema, type StagedKernel } from '../../src/core/plugin-api.js';

export const dracutSchema = { args: 'string[]', hostonly: 'boolean', command: 'string' } as const satisfies OptionSchema;

export const dracutOptions = (ctx: Context) => pluginOptions(ctx, 'dracut', dracutSchema);
export const dracutCommand = (ctx: Context) => dracutOptions(ctx).command ?? 'dracut';

/**
 * Hostonly for the running system; generic under another --root, whose hardware it cannot see.
 * `chosen` (kinstall's own choices, such as the compressor) comes before the user's arguments.
 */
export function dracutArguments(ctx: Context, kernel: StagedKernel, outFile: string, chosen: string[] = []): string[] {
  const opts = dracutOptions(ctx);
  const hostonly = opts.hostonly ?? ctx.isHostRoot;
  return [
    '--force',
    '--kver',
    kernel.version,
    '--kmoddir',
    kernel.moduleDir,
    hostonly ? '--hostonly' : '--no-hostonly',
    ...chosen,
    ...(opts.args ?? []),
    outFile,
  ];
}
