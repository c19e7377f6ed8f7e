// The read-only probes kinstall makes by the hundred (stat, lstat, readdir, readlink, realpath,
// access, reading a small file), with fs/promises' signatures and results, rejections included,
// but made by the synchronous call. Through fs/promises each one is a round trip through libuv's
// thread pool: about 0.1 ms on a 2-core machine, against a few microseconds for the system call
// itself, and an add makes ~250 of them one after another. Only local metadata and small files go
// through here; anything that writes, or reads a kernel or an initramfs, stays in fs/promises.
import { accessSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statfsSync, statSync } from 'node:fs';
import type * as promises from 'node:fs/promises';

export { constants } from 'node:fs';

type Args<F> = F extends (...args: infer A) => unknown ? A : never;

export const access = (async (...args: Args<typeof accessSync>) => accessSync(...args)) as typeof promises.access;
export const lstat = (async (...args: Args<typeof lstatSync>) => lstatSync(...args)) as typeof promises.lstat;
export const stat = (async (...args: Args<typeof statSync>) => statSync(...args)) as typeof promises.stat;
export const statfs = (async (...args: Args<typeof statfsSync>) => statfsSync(...args)) as typeof promises.statfs;
export const readdir = (async (...args: Args<typeof readdirSync>) => readdirSync(...args)) as typeof promises.readdir;
export const readlink = (async (...args: Args<typeof readlinkSync>) => readlinkSync(...args)) as typeof promises.readlink;
/** realpath(3), as fs/promises' realpath is (not the JavaScript walk of realpathSync). */
export const realpath = (async (...args: Args<typeof realpathSync.native>) =>
  realpathSync.native(...args)) as typeof promises.realpath;
/** For small files only (configuration, os-release, a kernel's .config): the whole file is read at once. */
export const readFile = (async (...args: Args<typeof readFileSync>) => readFileSync(...args)) as typeof promises.readFile;
