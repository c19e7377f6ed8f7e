// Free-space preflight for a plan: every filesystem the plan writes to must hold what it writes
// (measured after the initramfs was generated) plus a margin, before anything is committed.
import { lstat, stat, statfs } from '../quick-fs.js';
import path from 'node:path';
import { isDirectory } from '../fs.js';
import { throwProblems } from './preflight.js';
import type { Plan } from '../types.js';

const MARGIN_BYTES = 4 * 1024 * 1024;
const MARGIN_RATIO = 0.05;
const MiB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** The nearest existing directory of a path that may not exist yet. */
async function existingDir(p: string): Promise<string> {
  let dir = path.dirname(p);
  while (!(await isDirectory(dir)) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/** Bytes each target directory's filesystem must take, keyed by filesystem id. */
async function demand(plan: Plan): Promise<Map<string, { dir: string; bytes: number }>> {
  const byFs = new Map<string, { dir: string; bytes: number }>();
  const add = async (target: string, bytes: number) => {
    const dir = await existingDir(target);
    const fsid = String((await stat(dir)).dev);
    const entry = byFs.get(fsid) ?? { dir, bytes: 0 };
    entry.bytes += bytes;
    byFs.set(fsid, entry);
  };
  for (const item of plan.place)
    await add(
      item.to,
      (
        await lstat(item.from)
          .then(() => stat(item.from))
          .catch(() => ({ size: 0 }))
      ).size,
    );
  for (const item of plan.write) await add(item.path, Buffer.byteLength(item.content));
  return byFs;
}

/** A filesystem the plan writes to that lacks room: its free bytes, what the install needs, the difference. */
export interface SpaceShortage {
  /** A directory on it the plan writes into. */
  dir: string;
  /** Its device number (stat's dev), to tell which files live on it. */
  dev: number;
  free: number;
  needed: number;
  missing: number;
}

/** Every filesystem that cannot take what the plan writes plus the margin. */
export async function spaceShortages(plan: Plan): Promise<SpaceShortage[]> {
  const short: SpaceShortage[] = [];
  for (const [fsid, { dir, bytes }] of await demand(plan)) {
    const fs = await statfs(dir);
    // A filesystem that reports no size (fusefat and other FUSE filesystems; df shows "-") cannot be
    // checked: refusing would refuse every install there; a full one fails the commit, which rolls back.
    if (Number(fs.blocks) === 0) continue;
    const free = Number(fs.bavail) * Number(fs.bsize);
    const needed = bytes + Math.max(MARGIN_BYTES, bytes * MARGIN_RATIO);
    if (free < needed) short.push({ dir, dev: Number(fsid), free, needed: Math.ceil(needed), missing: Math.ceil(needed - free) });
  }
  return short;
}

/** One line per shortage; `remedy` says what would free the space (by default, prune). */
export function describeShortage(s: SpaceShortage, remedy = 'free space with kinstall prune --keep N'): string {
  return `${s.dir} has ${MiB(s.free)} free but the install needs ${MiB(s.needed)} (${s.missing} bytes missing); ${remedy}`;
}

/** EPREFLIGHT naming each filesystem short of space, or nothing when the plan fits. */
export function throwShortages(shortages: SpaceShortage[], remedy?: (s: SpaceShortage) => string): void {
  throwProblems(shortages.map((s) => describeShortage(s, remedy?.(s))));
}

export async function checkFreeSpace(plan: Plan): Promise<void> {
  throwShortages(await spaceShortages(plan));
}
