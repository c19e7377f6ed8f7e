// The kernel built from source by scripts/build-test-kernel.sh (its make O= tree, shared and
// read-only for tests), and what the from-source tests need around it.
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestRoot } from './root.js';

export interface TestKbuild {
  /** The make O= output tree. */
  out: string;
  /** The read-only source tree it was built from (its `source` link). */
  source: string;
  version: string;
  image: string;
  systemMap: string;
  config: string;
}

export function testKbuild(): TestKbuild {
  const out = process.env.KINSTALL_TEST_KBUILD;
  if (!out) throw new Error('KINSTALL_TEST_KBUILD is unset: run the tests through vitest (test/helpers/global-setup.ts)');
  return {
    out,
    source: path.resolve(out, readlinkSync(path.join(out, 'source'))),
    version: readFileSync(path.join(out, 'include/config/kernel.release'), 'utf8').trim(),
    image: path.join(out, 'arch/x86/boot/bzImage'),
    systemMap: path.join(out, 'System.map'),
    config: path.join(out, '.config'),
  };
}

/**
 * How many entries a tree holds and its newest change (lstat, links not followed): equal before
 * and after means nothing was written, added or deleted there. Cheap enough for the O= tree.
 */
export function treeState(dir: string): { entries: number; newest: number } {
  let entries = 0;
  let newest = 0;
  const walk = (current: string) => {
    for (const name of readdirSync(current)) {
      const full = path.join(current, name);
      const info = lstatSync(full);
      entries += 1;
      newest = Math.max(newest, info.mtimeMs, info.ctimeMs);
      if (info.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return { entries, newest };
}

/** kbuild's own modules_install of the O= tree, into DIR/lib/modules/KVER (it also runs depmod). */
export function modulesInstall(kbuild: TestKbuild, dir: string): void {
  execFileSync('make', ['-s', '-C', kbuild.out, `INSTALL_MOD_PATH=${dir}`, 'modules_install'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** A root's kinstall config for this kernel: dracut generic and quick (its base module only). */
export function writeKbuildConfig(r: TestRoot): void {
  const args = ['--conf', '/dev/null', '--confdir', r.at('/etc/dracut-empty.conf.d'), '-m', 'base'];
  writeFileSync(r.at('/etc/kinstall/config.json'), JSON.stringify({ dracut: { args } }, null, 2));
}

/** The modules depmod indexed for a version, through modprobe reading only that root's index. */
export function modprobeShows(r: TestRoot, version: string, module: string): string {
  return execFileSync('modprobe', ['-d', r.root, '-S', version, '--show-depends', module], { encoding: 'utf8' });
}
