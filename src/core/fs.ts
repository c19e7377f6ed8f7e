// File-system probes and the primitives every writer shares: one existence check per question
// (anything at the path, a regular file, a directory), one directory fsync, and a copy and chmod
// that also work on a FAT ESP, which keeps no permissions.
import { chmod, constants, copyFile, link, open, rm } from 'node:fs/promises';
import { lstat, stat, statfs } from './quick-fs.js';
import path from 'node:path';

/** Anything at the path, a dangling symlink included (lstat). */
export const pathExists = (p: string): Promise<boolean> =>
  lstat(p).then(
    () => true,
    () => false,
  );

/** A regular file at the path, following symlinks. */
export const isFile = (p: string): Promise<boolean> =>
  stat(p).then(
    (s) => s.isFile(),
    () => false,
  );

/** A regular file at the path itself, not through a symlink. */
export const isPlainFile = (p: string): Promise<boolean> =>
  lstat(p).then(
    (s) => s.isFile(),
    () => false,
  );

/** The bytes the files hold together, following symlinks; a missing file counts 0. */
export async function totalSize(files: string[]): Promise<number> {
  const sizes = await Promise.all(
    files.map((f) =>
      stat(f).then(
        (s) => s.size,
        () => 0,
      ),
    ),
  );
  return sizes.reduce((a, b) => a + b, 0);
}

/** A directory at the path, following symlinks. */
export const isDirectory = (p: string): Promise<boolean> =>
  stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );

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

/** Where a filesystem keeps no permissions, chmod fails so (fusefat: ENOSYS; CIFS: EPERM); vfat ignores it. */
const NO_MODES = new Set(['ENOSYS', 'EOPNOTSUPP', 'ENOTSUP', 'EPERM']);

/** chmod, except on a filesystem without permissions (a FAT ESP), where the file keeps the mount's mode. */
export async function setMode(file: string, mode: number): Promise<void> {
  await chmod(file, mode).catch((error: NodeJS.ErrnoException) => {
    if (!NO_MODES.has(error.code ?? '')) throw error;
  });
}

/** A kernel image in a few reads and writes: a stream's 64 KiB chunks made it ~220 round trips. */
const COPY_CHUNK = 1 << 20;

/** statfs(2) types of the filesystems that keep no modes: vfat (MSDOS_SUPER_MAGIC), FUSE (fusefat). */
const MODELESS_FS = new Set([0x4d44, 0x65735546]);

/**
 * Copies bytes to a new file (never over one) with the source's mode where the filesystem keeps
 * modes. There it is copyFile(): one call, the kernel copying (copy_file_range) while this process
 * goes on. Not on a FAT ESP: libuv's fchmod of the copy fails it on fusefat (ENOSYS) and on vfat
 * (EPERM) after the whole copy, and libuv then deletes it; there the bytes go in 1 MiB chunks.
 */
export async function copyBytes(from: string, to: string): Promise<void> {
  const type = await statfs(path.dirname(to)).then(
    (info) => info.type,
    () => undefined,
  );
  if (type !== undefined && !MODELESS_FS.has(type)) {
    try {
      return await copyFile(from, to, constants.COPYFILE_EXCL);
    } catch (error) {
      // A filesystem statfs did not tell apart (a network share without modes): the chunks below.
      if (!NO_MODES.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
      await rm(to, { force: true });
    }
  }
  await copyInChunks(from, to);
}

async function copyInChunks(from: string, to: string): Promise<void> {
  const source = await open(from, 'r');
  try {
    const target = await open(to, 'wx', 0o600);
    try {
      const buffer = Buffer.allocUnsafe(COPY_CHUNK);
      for (;;) {
        const { bytesRead } = await source.read(buffer, 0, COPY_CHUNK, null);
        if (bytesRead === 0) break;
        // write(2) may write less (a full disk says so only on the next call): the rest goes again.
        for (let written = 0; written < bytesRead;) {
          written += (await target.write(buffer, written, bytesRead - written)).bytesWritten;
        }
      }
    } finally {
      await target.close();
    }
    await setMode(to, (await source.stat()).mode & 0o7777);
  } finally {
    await source.close();
  }
}

/** Why link(2) refuses a second name where a copy still works: another filesystem, none (FAT), too many. */
const NO_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);

/** A new name for `from` at `to` (a hard link), or a copy where the filesystem makes none; says which. */
export async function linkOrCopy(from: string, to: string): Promise<'link' | 'copy'> {
  try {
    await link(from, to);
    return 'link';
  } catch (error) {
    if (!NO_LINK.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
  }
  await copyBytes(from, to);
  return 'copy';
}
