// The dracut initramfs generator. Hostonly for the running system; generic under another --root,
// since hostonly would describe the host's hardware, not the target's.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../../src/core/context.js';
import type { InitramfsGenerator, StagedKernel } from '../../src/core/types.js';

interface DracutOptions {
  args?: string[];
  hostonly?: boolean;
  command?: string;
}

const options = (ctx: Context): DracutOptions => (ctx.settings.pluginOptions.dracut ?? {}) as DracutOptions;

export function dracutArguments(ctx: Context, kernel: StagedKernel, outFile: string): string[] {
  const opts = options(ctx);
  const hostonly = opts.hostonly ?? ctx.isHostRoot;
  return [
    '--force',
    '--kver', kernel.version,
    '--kmoddir', kernel.moduleDir,
    hostonly ? '--hostonly' : '--no-hostonly',
    ...(opts.args ?? []),
    outFile,
  ];
}

export const dracutGenerator: InitramfsGenerator = {
  name: 'dracut',
  producesImage: true,
  optionSchema: { args: 'string[]', hostonly: 'boolean', command: 'string' },
  requiredTools: (ctx) => [options(ctx).command ?? 'dracut'],
  async preflight(_ctx, kernel) {
    // dracut stops late and obscurely without the modules tree and its modules.dep.
    const present = await stat(path.join(kernel.moduleDir, 'modules.order')).then(() => true, () => false);
    return present ? [] : [`dracut needs the modules of ${kernel.version} in ${kernel.moduleDir} (run make modules_install, or use --initramfs none)`];
  },
  async generate(ctx, kernel, outFile) {
    await ctx.exec.run(options(ctx).command ?? 'dracut', dracutArguments(ctx, kernel, outFile), { streamOutput: ctx.request.verbose });
  },
};
