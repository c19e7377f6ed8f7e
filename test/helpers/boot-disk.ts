// A persistent boot disk for tests that boot more than once: a raw image with a GPT partition table
// and one FAT32 EFI system partition at 1 MiB, which the firmware and the loaders write to (BootNext
// is in the vars file, but systemd-boot's `+1` → `+0-1` rename and grubenv are on this disk).
// A scenario round-trips it: build from the root's ESP dir, boot, read it back into that dir, run
// kinstall there, build again (or `listBootDisk` to look without copying):
//
//   const disk = buildBootDisk({ from: root.at('/efi'), out: scratch(root, 'disk.img'), add: loader });
//   await bootSequence({ disk, vars, log, until: (boots) => boots.length === 2 });
//   readBootDisk(disk, root.at('/efi'));   // the ESP dir now holds exactly what the disk holds
//
// The partition is made by esp-image.ts's buildEspImage (mkfs.vfat -F 32, mcopy -s), then placed
// with dd; mtools reads it at the offset (`disk.img@@1M`). Names survive both ways exactly (long
// names, case, `+`). The disk and partition GUIDs are fixed, so a rebuilt disk is the same disk to
// the firmware (its own entries name the partition by GUID).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { buildEspImage, listEspImage, type EspImageOptions } from './esp-image.js';
import { assertScratch } from './root.js';

export const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
export const BOOT_DISK_GUID = '6B696E73-7461-6C6C-2D64-69736B000001';
export const ESP_PARTITION_GUID = '6B696E73-7461-6C6C-2D65-737000000001';

const MIB = 1024 * 1024;
const SECTOR = 512;
const mtoolsEnv = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
/** mtools' name for the partition: the image at the partition's byte offset. */
const partitionAt = (disk: string) => `${disk}@@${MIB}`;

/** `from` (with `add` and `omit` as buildEspImage takes them) as the ESP of a new GPT disk at `out`. */
export function buildBootDisk(options: EspImageOptions): string {
  assertScratch(options.out);
  const partition = buildEspImage({ ...options, out: `${options.out}.esp` });
  try {
    const size = statSync(partition).size;
    rmSync(options.out, { force: true });
    // 1 MiB before the partition (protective MBR, GPT), 1 MiB after it (the backup GPT).
    execFileSync('truncate', ['-s', String(size + 2 * MIB), options.out]);
    const table = [
      'label: gpt',
      `label-id: ${BOOT_DISK_GUID}`,
      `start=${MIB / SECTOR}, size=${size / SECTOR}, type=${ESP_TYPE}, uuid=${ESP_PARTITION_GUID}, name="ESP"`,
    ];
    execFileSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', options.out], {
      input: `${table.join('\n')}\n`,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    execFileSync('dd', [`if=${partition}`, `of=${options.out}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none']);
    return options.out;
  } finally {
    rmSync(partition, { force: true });
  }
}

/**
 * Replaces the contents of `intoDir` with the disk's whole tree (the directory itself stays, so a
 * root's ESP mount point keeps its place). Copied aside first and then moved in, so a failing mcopy
 * leaves `intoDir` as it was.
 */
export function readBootDisk(disk: string, intoDir: string): void {
  assertScratch(intoDir);
  mkdirSync(intoDir, { recursive: true });
  const aside = mkdtempSync(`${intoDir}.read-`);
  try {
    const tree = path.join(aside, 'tree');
    execFileSync('mcopy', ['-s', '-m', '-Q', '-i', partitionAt(disk), '::/', tree], { stdio: 'pipe', env: mtoolsEnv });
    for (const name of readdirSync(intoDir)) rmSync(path.join(intoDir, name), { recursive: true, force: true });
    for (const name of readdirSync(tree)) renameSync(path.join(tree, name), path.join(intoDir, name));
  } finally {
    rmSync(aside, { recursive: true, force: true });
  }
}

/** The partition's files ('/'-separated, from the ESP's root, no directories), as mtools lists them. */
export function listBootDisk(disk: string): string[] {
  return listEspImage(partitionAt(disk));
}

/** The partition table as sfdisk dumps it, for tests of the disk itself. */
export function dumpPartitionTable(disk: string): string {
  return execFileSync('sfdisk', ['--dump', disk], { encoding: 'utf8' });
}
