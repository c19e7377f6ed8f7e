// FAT disk images for boot tests, built from a directory kinstall wrote with mkfs.vfat and mcopy:
// no loop devices, no mounts. Extra files (a boot loader, startup.nsh) go in; negative tests leave
// chosen files out, all in a hard-linked copy so the root kinstall wrote stays untouched.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { assertScratch } from './root.js';

export interface EspImageOptions {
  /** The directory whose contents become the filesystem's root (the ESP, or /boot for GRUB). */
  from: string;
  /** The image file to create (under the OS temp dir). */
  out: string;
  /** Files to add: image path ('/'-separated) → a host file to copy, or the content itself. */
  add?: Record<string, string | Buffer>;
  /** Image paths ('/'-separated) of files from `from` to leave out. */
  omit?: string[];
  /** The FAT volume id, 8 hex digits (GRUB shows it as XXXX-XXXX); mkfs.vfat picks one when unset. */
  volumeId?: string;
}

const MIB = 1024 * 1024;

function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? treeBytes(full) : statSync(full).size;
  }
  return total;
}

/** Builds the image and returns its path. FAT32 needs about 33 MiB at least, so 64 MiB is the floor. */
export function buildEspImage(options: EspImageOptions): string {
  assertScratch(options.out);
  const staging = mkdtempSync(`${options.out}.tree-`);
  try {
    for (const name of readdirSync(options.from)) execFileSync('cp', ['-al', path.join(options.from, name), staging]);
    for (const rel of options.omit ?? []) {
      const target = path.join(staging, rel);
      statSync(target); // a typo in a negative test must not silently leave nothing out
      rmSync(target);
    }
    for (const [rel, source] of Object.entries(options.add ?? {})) {
      const target = path.join(staging, rel);
      mkdirSync(path.dirname(target), { recursive: true });
      rmSync(target, { force: true });
      if (typeof source === 'string') copyFileSync(source, target);
      else writeFileSync(target, source);
    }
    const size = Math.max(64 * MIB, Math.ceil((treeBytes(staging) * 1.25) / MIB) * MIB + 16 * MIB);
    rmSync(options.out, { force: true });
    const volumeId = options.volumeId === undefined ? [] : ['-i', options.volumeId];
    execFileSync('mkfs.vfat', ['-F', '32', '-n', 'KINSTALLESP', ...volumeId, '-C', options.out, String(size / 1024)], {
      stdio: 'pipe',
    });
    const entries = readdirSync(staging).map((name) => path.join(staging, name));
    if (entries.length > 0) {
      execFileSync('mcopy', ['-s', '-Q', '-i', options.out, ...entries, '::/'], {
        stdio: 'pipe',
        env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
      });
    }
    return options.out;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** The image's file list ('/'-separated, files only), as mtools reads it back. */
export function listEspImage(image: string): string[] {
  const out = execFileSync('mdir', ['-/', '-b', '-i', image, '::/'], {
    encoding: 'utf8',
    env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
  });
  return out
    .split('\n')
    .map((line) => line.trim().replace(/^::/, ''))
    .filter((line) => line && !line.endsWith('/'));
}
