// File-system probes and the durability primitive every writer shares: one existence check per
// question (anything at the path, a regular file, a directory) and one directory fsync.
import { constants, lstat, open, stat } from 'node:fs/promises';

/** Anything at the path, a dangling symlink included (lstat). */
export const pathExists = (p: string): Promise<boolean> => lstat(p).then(() => true, () => false);

/** A regular file at the path, following symlinks. */
export const isFile = (p: string): Promise<boolean> => stat(p).then((s) => s.isFile(), () => false);

/** A regular file at the path itself, not through a symlink. */
export const isPlainFile = (p: string): Promise<boolean> => lstat(p).then((s) => s.isFile(), () => false);

/** A directory at the path, following symlinks. */
export const isDirectory = (p: string): Promise<boolean> => stat(p).then((s) => s.isDirectory(), () => false);

/** The first candidate that is a regular file (following symlinks), or undefined. */
export async function firstFile(candidates: string[]): Promise<string | undefined> {
  for (const candidate of candidates) if (await isFile(candidate)) return candidate;
  return undefined;
}

/** fsync(2) a file or, with O_DIRECTORY, a directory, so a rename or new entry in it is durable. */
export async function fsyncPath(p: string, flags: number = constants.O_RDONLY): Promise<void> {
  const handle = await open(p, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export const fsyncDir = (dir: string): Promise<void> => fsyncPath(dir, constants.O_RDONLY | constants.O_DIRECTORY);
