// The root's needs: the root mount from mountinfo, and the driver chain of a block device as sysfs
// shows it (a sysfs-shaped tree in a temp dir: a dm-crypt device over an NVMe partition).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blockDeviceNeeds, filesystemNeed, parseRootMount } from '../../src/core/system/root-device.js';

const sys = mkdtempSync(path.join(os.tmpdir(), 'kinstall-sysfs-'));
afterAll(() => rmSync(sys, { recursive: true, force: true }));

describe('parseRootMount', () => {
  it('takes the last mount on / with its device number and type', () => {
    const mountinfo = [
      '22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw',
      '23 22 0:21 / /proc rw - proc proc rw',
      '30 22 253:0 / / rw shared:9 - btrfs /dev/mapper/root rw',
    ].join('\n');
    expect(parseRootMount(mountinfo)).toEqual({ majMin: '253:0', type: 'btrfs' });
    expect(parseRootMount('')).toBeUndefined();
  });
});

describe('blockDeviceNeeds', () => {
  it('follows dm-crypt to its NVMe partition, through every driver on the way', async () => {
    const pci = path.join(sys, 'devices/pci0000:00/0000:00:04.0');
    const nvme = path.join(pci, 'nvme/nvme0/nvme0n1');
    const dm = path.join(sys, 'devices/virtual/block/dm-0');
    mkdirSync(path.join(nvme, 'nvme0n1p2'), { recursive: true });
    writeFileSync(path.join(nvme, 'nvme0n1p2/partition'), '2\n');
    mkdirSync(path.join(sys, 'bus/pci/drivers/nvme'), { recursive: true });
    symlinkSync(path.join(sys, 'bus/pci/drivers/nvme'), path.join(pci, 'driver'));
    mkdirSync(path.join(dm, 'dm'), { recursive: true });
    mkdirSync(path.join(dm, 'slaves'));
    writeFileSync(path.join(dm, 'dm/uuid'), 'CRYPT-LUKS2-0123-root\n');
    symlinkSync(path.join(nvme, 'nvme0n1p2'), path.join(dm, 'slaves/nvme0n1p2'));
    mkdirSync(path.join(sys, 'dev/block'), { recursive: true });
    symlinkSync(dm, path.join(sys, 'dev/block/253:0'));

    const needs = await blockDeviceNeeds(sys, '253:0');
    expect(needs.map((n) => n.alternatives)).toEqual([[['BLK_DEV_DM']], [['DM_CRYPT']], [['BLK_DEV_NVME']]]);
    expect(needs.map((n) => n.what)).toEqual([
      "the root device's driver dm-0",
      "the root device's driver dm-0",
      "the root device's driver nvme (0000:00:04.0)",
    ]);
    expect(await blockDeviceNeeds(sys, '8:1')).toEqual([]);
  });

  it('maps filesystem types to options, ext2 with two ways', () => {
    expect(filesystemNeed('xfs')).toEqual({ what: 'the root filesystem (xfs)', alternatives: [['XFS_FS']] });
    expect(filesystemNeed('ext2')?.alternatives).toEqual([['EXT2_FS'], ['EXT4_FS', 'EXT4_USE_FOR_EXT2']]);
    expect(filesystemNeed('zfs')).toBeUndefined();
  });
});
