// Throwaway target roots for integration tests. Every root lives under the OS temp dir and
// the helpers refuse any other path, so no test can reach the host's /boot.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { testKernel } from './kernel.js';

export interface TestRoot {
  root: string;
  boot: string;
  /** A path inside the root, as the target names it. */
  at(systemPath: string): string;
  cleanup(): void;
}

export interface RootOptions {
  /** Copy the test kernel's modules into <root>/lib/modules (hard links, so it is cheap). */
  modules?: boolean;
  /** The kinstall config file written to <root>/etc/kinstall/config.json; false for none. */
  config?: Record<string, unknown> | false;
}

const tmp = os.tmpdir();

export function assertScratch(dir: string): void {
  const resolved = path.resolve(dir);
  if (!resolved.startsWith(`${tmp}${path.sep}`)) throw new Error(`refusing to touch ${resolved}: not under ${tmp}`);
}

/** Dracut as the tests run it: generic, host config ignored, the base module only (about 5 s). */
export function fastDracutArgs(emptyConfDir: string): string[] {
  return ['--conf', '/dev/null', '--confdir', emptyConfDir, '-m', 'base', '--add-drivers', 'virtio_blk'];
}

export function makeRoot(options: RootOptions = {}): TestRoot {
  const root = mkdtempSync(path.join(tmp, 'kinstall-root-'));
  assertScratch(root);
  const at = (p: string) => path.join(root, path.resolve('/', p));
  mkdirSync(at('/boot'), { recursive: true });
  mkdirSync(at('/etc/kinstall'), { recursive: true });
  mkdirSync(at('/lib/modules'), { recursive: true });
  const emptyConf = at('/etc/dracut-empty.conf.d');
  mkdirSync(emptyConf);
  if (options.modules) {
    const kernel = testKernel();
    execFileSync('cp', ['-al', kernel.modules, at('/lib/modules/')]);
  }
  if (options.config !== false) {
    // A bare test root cannot be entered (no /bin/sh): its hooks run on the host, with paths under
    // the root, unless a test says otherwise (chroot-root.ts makes roots the hooks run inside).
    const config = { dracut: { args: fastDracutArgs(emptyConf) }, targetHooks: 'host', ...(options.config ?? {}) };
    writeFileSync(at('/etc/kinstall/config.json'), JSON.stringify(config, null, 2));
  }
  return {
    root,
    boot: at('/boot'),
    at,
    cleanup: () => {
      assertScratch(root);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Makes roots for one test file (or one describe block) and removes every one of them afterwards. */
export interface ScratchRoots {
  /** A new root, as makeRoot makes it. */
  (options?: RootOptions): TestRoot;
  /** A root made another way (a copy, a chroot root, a boot root), removed with the others. */
  adopt<R extends TestRoot>(r: R): R;
}

export interface ScratchRootsOptions {
  /** After each test (the default), or once all the tests of the suite the call stands in have run. */
  after?: 'each' | 'all';
  /** What must end before the roots are removed: mounts inside them, processes writing to them. */
  first?: () => unknown;
}

/**
 * The one owner of test roots: call it at the top of a file (or of a describe block) and make every
 * root through what it returns; it registers the afterEach (or afterAll) that removes them all.
 */
export function useScratchRoots(options: ScratchRootsOptions = {}): ScratchRoots {
  const roots: TestRoot[] = [];
  const removeAll = async () => {
    try {
      await options.first?.();
    } finally {
      for (const r of roots.splice(0)) r.cleanup();
    }
  };
  if (options.after === 'all') afterAll(removeAll);
  else afterEach(removeAll);
  const adopt = <R extends TestRoot>(r: R): R => {
    roots.push(r);
    return r;
  };
  return Object.assign((rootOptions?: RootOptions) => adopt(makeRoot(rootOptions)), { adopt });
}

/** A root-owned 0755 shell hook in a root's hook directory (as the trust check requires when running as root). */
export function writeHook(r: TestRoot, dir: string, name: string, body: string): string {
  mkdirSync(r.at(dir), { recursive: true });
  const file = r.at(path.join(dir, name));
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}
