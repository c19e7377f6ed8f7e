// A real FAT ESP for tests: a FAT32 image mounted read-write with fusefat (FUSE; this machine has
// no vfat module and no loop mounts) at a test root's ESP path, so the transaction meets what a
// vfat ESP does: no hard links, no symlinks, no permissions. Every mount is undone in cleanup,
// also after a failure, and lazily when the test process exits with one still mounted.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertScratch, type TestRoot } from './root.js';
import { snapshotTree, type TreeSnapshot } from './tree.js';

export interface FatEsp {
  /** Host path of the mount point, inside the test root. */
  dir: string;
  /** The FAT image file (outside the root). */
  image: string;
  /** What FAT holds: each name and each file's content (its modes are the mount's, not the files'). */
  snapshot(): TreeSnapshot;
  /** Unmounts, waits for fusefat to exit; safe to call twice. */
  unmount(): Promise<void>;
  /** fsck.fat -n of the image (unmounts first): the filesystem is consistent. */
  check(): Promise<string>;
}

const MOUNT_TIMEOUT_MS = 15_000;
const mounted = new Map<string, ChildProcess>();
/** Directories holding the images, deleted by unmountFatEsps (check() reads one after its unmount). */
const imageDirs = new Set<string>();

/** Where /proc/self/mounts has a fusefat mount at the directory. */
function isMounted(dir: string): boolean {
  const escaped = dir.replace(/ /g, '\\040');
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((line) => {
      const fields = line.split(' ');
      return fields[1] === escaped && fields[2] === 'fuse.fusefat';
    });
}

/** Throws unless a hard link in the directory fails as on FAT (EPERM): the test is on FAT, not ext4 or tmpfs. */
export function assertNoHardLinks(dir: string): void {
  const probe = path.join(dir, 'kinstall-fat-probe');
  writeFileSync(probe, 'probe');
  try {
    let code: string | undefined;
    try {
      linkSync(probe, `${probe}-link`);
    } catch (error) {
      code = (error as NodeJS.ErrnoException).code;
    }
    if (code !== 'EPERM') throw new Error(`${dir} is not FAT: a hard link ${code ? `failed with ${code}` : 'worked'}`);
  } finally {
    unlinkSync(probe);
  }
}

/** Unmounts the ESP at dir: fusermount -u, else lazily (-uz, umount -l); then fusefat (our child) exits. */
async function unmountDir(dir: string): Promise<void> {
  const child = mounted.get(dir);
  if (!child) return;
  for (const argv of [
    ['fusermount', '-u', dir],
    ['fusermount', '-uz', dir],
    ['umount', '-l', dir],
  ]) {
    if (!isMounted(dir)) break;
    try {
      execFileSync(argv[0] ?? '', argv.slice(1), { stdio: 'pipe' });
    } catch {
      // busy or already gone: the next, lazier way
    }
  }
  if (child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((resolve) => child.once('exit', resolve));
    if ((await Promise.race([gone, sleep(MOUNT_TIMEOUT_MS, 'timeout')])) === 'timeout' && child.pid)
      process.kill(child.pid, 'SIGKILL');
  }
  mounted.delete(dir);
  if (isMounted(dir)) throw new Error(`${dir} is still mounted after fusermount and umount -l`);
}

/** Every ESP still mounted (for afterEach, before the roots are deleted). */
export async function unmountFatEsps(): Promise<void> {
  const results = await Promise.allSettled([...mounted.keys()].map((dir) => unmountDir(dir)));
  for (const imageDir of imageDirs) {
    assertScratch(imageDir);
    rmSync(imageDir, { recursive: true, force: true });
  }
  imageDirs.clear();
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

process.once('exit', () => {
  for (const dir of mounted.keys()) {
    try {
      execFileSync('fusermount', ['-uz', dir], { stdio: 'ignore' });
    } catch {
      // nothing more can be done in an exit handler
    }
  }
});

/**
 * A fresh FAT32 image (128 MiB, sparse; no volume label, which fusefat would list as a file)
 * mounted at the root's ESP path (`/boot/efi`, `/efi`); the directories in `dirs` (e.g. `EFI`,
 * `loader/entries`) are made on it, so the layouts find the ESP.
 */
export async function mountFatEsp(r: TestRoot, espPath: string, dirs: string[] = ['EFI'], sizeMiB = 128): Promise<FatEsp> {
  const dir = r.at(espPath);
  assertScratch(dir);
  const imageDir = mkdtempSync(path.join(os.tmpdir(), 'kinstall-fat-'));
  imageDirs.add(imageDir);
  const image = path.join(imageDir, 'esp.img');
  execFileSync('mkfs.vfat', ['-F', '32', '-C', image, String(sizeMiB * 1024)], { stdio: 'pipe' });
  mkdirSync(dir, { recursive: true });
  // -f: our child, so cleanup knows when it is done; -s: one thread, fusefat is not thread-safe;
  // hard_remove: a removed file is gone, no .fuse_hidden* left as FUSE does for open files. Its
  // chatter goes to a file: a pipe that a test reading the mount synchronously does not drain
  // would stop fusefat mid-read, and the test with it. setpriv and auto_unmount: a test process
  // killed outright takes fusefat and the mount with it.
  const log = path.join(imageDir, 'fusefat.log');
  const logFd = openSync(log, 'w');
  const fuseArgs = ['-f', '-s', '-o', 'rw+', '-o', 'hard_remove', '-o', 'auto_unmount', image, dir];
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', 'fusefat', ...fuseArgs], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  mounted.set(dir, child);
  const deadline = Date.now() + MOUNT_TIMEOUT_MS;
  while (!isMounted(dir)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await unmountDir(dir);
      throw new Error(
        `fusefat did not mount ${image} at ${dir} (exit ${String(child.exitCode)}): ${readFileSync(log, 'utf8').trim()}`,
      );
    }
    await sleep(50);
  }
  assertNoHardLinks(dir);
  for (const d of dirs) mkdirSync(path.join(dir, d), { recursive: true });
  const unmount = () => unmountDir(dir);
  return {
    dir,
    image,
    snapshot: () => fatSnapshot(dir),
    unmount,
    check: async () => {
      await unmount();
      return execFileSync('fsck.fat', ['-n', image], { encoding: 'utf8' });
    },
  };
}

/** A tree snapshot without modes: on FAT they are the mount's, the same for every file. */
export function fatSnapshot(dir: string): TreeSnapshot {
  const tree = snapshotTree(dir);
  for (const [name, value] of Object.entries(tree)) tree[name] = value.replace(/^(dir|file) [0-7]+/, '$1');
  return tree;
}
