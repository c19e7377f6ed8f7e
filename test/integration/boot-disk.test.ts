// The persistent boot disk of the try-once boot tests: a GPT disk with one FAT32 ESP at 1 MiB,
// built from a directory and read back into one with every name (case, long names, `+`) exact.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildBootDisk, dumpPartitionTable, ESP_TYPE, listBootDisk, readBootDisk } from '../helpers/boot-disk.js';
import { useScratchRoots } from '../helpers/root.js';

describe('boot disk', () => {
  const roots = useScratchRoots();

  it('builds a GPT disk with one ESP at 1 MiB and reads the tree back exactly, replacing what was there', () => {
    const r = roots({ config: false });
    const esp = r.at('/efi');
    mkdirSync(path.join(esp, 'loader/entries'), { recursive: true });
    mkdirSync(path.join(esp, 'EFI/Gentoo'), { recursive: true });
    writeFileSync(path.join(esp, 'loader/entries/6b69-6.1.0+1.conf'), 'title new\n');
    writeFileSync(path.join(esp, 'loader/loader.conf'), 'timeout 0\n');
    writeFileSync(path.join(esp, 'EFI/Gentoo/vmlinuz-6.1.0-Mixed.efi'), Buffer.alloc(3 * 1024 * 1024, 7));
    writeFileSync(path.join(esp, 'left-out'), 'omitted\n');
    const disk = buildBootDisk({
      from: esp,
      out: r.at('/disk.img'),
      add: { 'EFI/BOOT/BOOTX64.EFI': Buffer.from('loader') },
      omit: ['left-out'],
    });

    const table = dumpPartitionTable(disk);
    expect(table).toMatch(/^label: gpt$/m);
    expect(table).toMatch(new RegExp(`: start=\\s*2048, size=\\s*\\d+, type=${ESP_TYPE}, `));
    expect(table.match(/ : start=/g)).toHaveLength(1);
    // The FAT32 boot sector sits at 1 MiB.
    const sector = readFileSync(disk).subarray(1024 * 1024, 1024 * 1024 + 512);
    expect(sector.toString('latin1', 82, 90)).toBe('FAT32   ');
    expect(sector.readUInt16LE(510)).toBe(0xaa55);
    expect(listBootDisk(disk).sort()).toEqual([
      '/EFI/BOOT/BOOTX64.EFI',
      '/EFI/Gentoo/vmlinuz-6.1.0-Mixed.efi',
      '/loader/entries/6b69-6.1.0+1.conf',
      '/loader/loader.conf',
    ]);

    // What a loader does on the disk: rename the entry (mtools here, the firmware's FAT driver there).
    execFileSync(
      'mren',
      ['-i', `${disk}@@1048576`, '::/loader/entries/6b69-6.1.0+1.conf', '::/loader/entries/6b69-6.1.0+0-1.conf'],
      {
        env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
      },
    );
    writeFileSync(path.join(esp, 'stale'), 'not on the disk\n');
    readBootDisk(disk, esp);
    const files = execFileSync('find', ['.', '-type', 'f'], { cwd: esp, encoding: 'utf8' }).trim().split('\n').sort();
    expect(files).toEqual([
      './EFI/BOOT/BOOTX64.EFI',
      './EFI/Gentoo/vmlinuz-6.1.0-Mixed.efi',
      './loader/entries/6b69-6.1.0+0-1.conf',
      './loader/loader.conf',
    ]);
    expect(readFileSync(path.join(esp, 'loader/entries/6b69-6.1.0+0-1.conf'), 'utf8')).toBe('title new\n');
    expect(readFileSync(path.join(esp, 'EFI/Gentoo/vmlinuz-6.1.0-Mixed.efi')).equals(Buffer.alloc(3 * 1024 * 1024, 7))).toBe(
      true,
    );

    // Built again from the directory read back: the same disk to the firmware (fixed GUIDs).
    const again = buildBootDisk({ from: esp, out: r.at('/disk2.img') });
    expect(dumpPartitionTable(again).replace(/disk2/g, 'disk')).toBe(table);
  });
});
