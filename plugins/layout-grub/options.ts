// Where the grub layout finds GRUB's files for the target: grub.cfg, grubenv beside it, grub-mkconfig.
import path from 'node:path';
import { pluginOptions, type Context, type OptionSchema } from '../../src/core/plugin-api.js';

export const grubSchema = { cfg: 'string', mkconfig: 'string' } as const satisfies OptionSchema;
const options = (ctx: Context) => pluginOptions(ctx, 'grub', grubSchema);

/** grub.cfg as the target system names it: GRUB_CFG, then the config file, then <boot>/grub/grub.cfg. */
export function grubConfigPath(ctx: Context): string {
  return ctx.env.GRUB_CFG || options(ctx).cfg || path.posix.join(ctx.settings.bootDir, 'grub/grub.cfg');
}

/** grubenv as the target names it: GRUB's $prefix/grubenv, the directory grub.cfg is in. */
export const grubenvPath = (ctx: Context): string => path.posix.join(path.posix.dirname(grubConfigPath(ctx)), 'grubenv');

export const mkconfigCommand = (ctx: Context) => options(ctx).mkconfig ?? 'grub-mkconfig';
