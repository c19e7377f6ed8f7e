// The `none` generator: no initramfs (kernels with the root filesystem's drivers built in).
import type { InitramfsGenerator } from '../../src/core/plugin-api.js';

export const noInitramfs: InitramfsGenerator = {
  name: 'none',
  producesImage: false,
  async generate() {
    // Nothing to generate: the pipeline installs no initramfs for this generator.
  },
};
