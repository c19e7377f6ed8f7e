// The dracut initramfs generator. Hostonly for the running system; generic under another --root,
// since hostonly would describe the host's hardware, not the target's.
import path from 'node:path';
import { isFile, type InitramfsGenerator } from '../../src/core/plugin-api.js';
import { dracutArguments, dracutCommand, dracutSchema } from '../shared/dracut.js';
import { describeDracutInitramfs } from '../shared/dracut-initramfs.js';

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
    return present ? [] : [`dracut needs the modules of ${kernel.version} in ${kernel.moduleDir} (run make modules_install, or kinstall stage --build-dir OUT --modules-dir DIR, or use --initramfs none)`];
  },
  async generate(ctx, kernel, outFile) {
    await ctx.exec.run(dracutCommand(ctx), dracutArguments(ctx, kernel, outFile), { streamOutput: ctx.request.verbose });
  },
};
