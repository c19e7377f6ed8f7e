// The dracut initramfs generator. Hostonly for the running system; generic under another --root,
// since hostonly would describe the host's hardware, not the target's.
import path from 'node:path';
import { isFile, type InitramfsGenerator } from '../../src/core/plugin-api.js';
import { dracutArguments, dracutCommand, dracutSchema } from '../shared/dracut.js';
import { chooseDracutCompression, describeDracutInitramfs } from '../shared/dracut-initramfs.js';
import { dracutProgress } from '../shared/dracut-progress.js';

export const dracutGenerator: InitramfsGenerator = {
  name: 'dracut',
  producesImage: true,
  optionSchema: dracutSchema,
  requiredTools: (ctx) => [dracutCommand(ctx)],
  // udev in the initramfs finds devices in devtmpfs; dracut's init mounts it first.
  requiredKernelConfig: ['DEVTMPFS'],
  describeInitramfs: describeDracutInitramfs,
  async preflight(_ctx, kernel) {
    // dracut stops late and obscurely without the modules tree and its modules.dep.
    const present = await isFile(path.join(kernel.moduleDir, 'modules.order'));
    return present
      ? []
      : [
          `dracut needs the modules of ${kernel.version} in ${kernel.moduleDir} (run make modules_install, or kinstall stage --build-dir OUT --modules-dir DIR, or use --initramfs none)`,
        ];
  },
  async generate(ctx, kernel, outFile) {
    const compression = await chooseDracutCompression(ctx, kernel);
    const what = compression ? `${compression.compression}, the fastest ${kernel.version} unpacks` : 'compressor from its config';
    const progress = dracutProgress(ctx, what);
    try {
      await ctx.exec.run(dracutCommand(ctx), dracutArguments(ctx, kernel, outFile, compression?.args), {
        streamOutput: ctx.request.verbose,
        onLine: progress.onLine,
      });
      progress.done('done');
    } catch (error) {
      progress.done('failed');
      throw error;
    }
  },
};
