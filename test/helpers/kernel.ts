// The real Debian cloud kernel fetched by scripts/fetch-test-kernel.sh, as tests use it.
import { readdirSync } from 'node:fs';
import path from 'node:path';

export interface TestKernel {
  version: string;
  /** The unpacked package: boot/ and lib/modules/VERSION/. */
  dir: string;
  image: string;
  systemMap: string;
  config: string;
  modules: string;
}

export function testKernel(): TestKernel {
  const dir = process.env.KINSTALL_TEST_KERNEL ?? '/var/cache/kinstall-test/kernel';
  const version = readdirSync(path.join(dir, 'lib/modules'))[0];
  if (!version) throw new Error(`no kernel in ${dir}; run scripts/fetch-test-kernel.sh`);
  return {
    version,
    dir,
    image: path.join(dir, 'boot', `vmlinuz-${version}`),
    systemMap: path.join(dir, 'boot', `System.map-${version}`),
    config: path.join(dir, 'boot', `config-${version}`),
    modules: path.join(dir, 'lib/modules', version),
  };
}
