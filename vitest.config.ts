// Unit tests run in-process; integration and e2e tests spawn the built CLI against temporary
// roots with real dracut, depmod, grub-mkconfig and qemu. Two cores: at most two files at once.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    include: ['test/**/*.test.ts'],
    reporters: ['default'],
  },
});
