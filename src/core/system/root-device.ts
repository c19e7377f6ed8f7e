// What the target's root needs from the kernel: its filesystem type and the drivers of the
// device under it. Under --root only /etc/fstab speaks (and /etc/crypttab); on the real root the
// running system's root mount and the device chain sysfs shows for it.
import { readdir, readFile, readlink, realpath } from '../quick-fs.js';
import path from 'node:path';
import type { Context } from '../context.js';

/** A need of the root: met when every option of any one alternative is built (y, or m in an initramfs). */
export interface RootNeed {
  what: string;
  alternatives: string[][];
}

/** The filesystems one kernel option builds, as `type=OPTION` words. */
const ONE_OPTION =
  'ext4=EXT4_FS xfs=XFS_FS btrfs=BTRFS_FS f2fs=F2FS_FS vfat=VFAT_FS jfs=JFS_FS reiserfs=REISERFS_FS nilfs2=NILFS2_FS ' +
  'bcachefs=BCACHEFS_FS erofs=EROFS_FS squashfs=SQUASHFS overlay=OVERLAY_FS 9p=9P_FS virtiofs=VIRTIO_FS';

/** Kernel options per filesystem type: any one alternative (each a set of options) will do. */
const FILESYSTEM_OPTIONS: Record<string, string[][]> = {
  ...Object.fromEntries(
    ONE_OPTION.split(' ')
      .map((word) => word.split('='))
      .map(([type = '', option = '']) => [type, [[option]]]),
  ),
  // ext2 and ext3 also through the ext4 driver.
  ext2: [['EXT2_FS'], ['EXT4_FS', 'EXT4_USE_FOR_EXT2']],
  ext3: [['EXT4_FS'], ['EXT3_FS']],
  nfs: [['NFS_FS', 'ROOT_NFS']],
  nfs4: [['NFS_FS', 'NFS_V4']],
};

export function filesystemNeed(type: string): RootNeed | undefined {
  const alternatives = FILESYSTEM_OPTIONS[type];
  return alternatives ? { what: `the root filesystem (${type})`, alternatives } : undefined;
}

/** Kernel options per driver bound along a block device's sysfs path. */
const DRIVER_OPTIONS: Record<string, string> = {
  nvme: 'BLK_DEV_NVME',
  virtio_blk: 'VIRTIO_BLK',
  virtio_scsi: 'SCSI_VIRTIO',
  'virtio-pci': 'VIRTIO_PCI',
  sd: 'BLK_DEV_SD',
  ahci: 'SATA_AHCI',
  ata_piix: 'ATA_PIIX',
  mmcblk: 'MMC_BLOCK',
  'sdhci-pci': 'MMC_SDHCI_PCI',
  'usb-storage': 'USB_STORAGE',
  uas: 'USB_UAS',
  xhci_hcd: 'USB_XHCI_HCD',
  vbd: 'XEN_BLKDEV_FRONTEND',
  hv_storvsc: 'HYPERV_STORAGE',
  vmw_pvscsi: 'VMWARE_PVSCSI',
  megaraid_sas: 'MEGARAID_SAS',
  mpt3sas: 'SCSI_MPT3SAS',
};

interface FstabRoot {
  spec: string;
  type: string;
}

/** The `/` line of the target's /etc/fstab; undefined when it has none. */
export async function readFstabRoot(ctx: Context): Promise<FstabRoot | undefined> {
  const text = await readFile(ctx.paths.under('/etc/fstab'), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [spec, file, type] = line.replace(/#.*$/, '').trim().split(/\s+/);
    if (spec && file === '/' && type) return { spec, type };
  }
  return undefined;
}

/** What an fstab device name tells of its drivers; UUID=, LABEL= and the like tell nothing. */
export async function fstabDeviceNeeds(ctx: Context, spec: string): Promise<RootNeed[]> {
  const needs = (what: string, ...options: string[]) => options.map((o) => ({ what, alternatives: [[o]] }));
  if (spec.startsWith('/dev/mapper/') || /^\/dev\/dm-/.test(spec)) {
    const name = path.basename(spec);
    const crypttab = await readFile(ctx.paths.under('/etc/crypttab'), 'utf8').catch(() => '');
    const listed = crypttab.split('\n').some((l) => l.trim().split(/\s+/)[0] === name);
    if (listed || /crypt|luks/i.test(name)) return needs(`the encrypted root device ${spec}`, 'BLK_DEV_DM', 'DM_CRYPT');
    return needs(`the device-mapper root device ${spec}`, 'BLK_DEV_DM');
  }
  const byPrefix: Array<[RegExp, string]> = [
    [/^\/dev\/md/, 'BLK_DEV_MD'],
    [/^\/dev\/nvme/, 'BLK_DEV_NVME'],
    [/^\/dev\/vd/, 'VIRTIO_BLK'],
    [/^\/dev\/sd/, 'BLK_DEV_SD'],
    [/^\/dev\/xvd/, 'XEN_BLKDEV_FRONTEND'],
    [/^\/dev\/mmcblk/, 'MMC_BLOCK'],
  ];
  for (const [pattern, option] of byPrefix) if (pattern.test(spec)) return needs(`the root device ${spec}`, option);
  // /dev/VG/LV: a logical volume.
  if (/^\/dev\/[^/]+\/[^/]+$/.test(spec) && !spec.startsWith('/dev/disk/'))
    return needs(`the LVM root device ${spec}`, 'BLK_DEV_DM');
  return [];
}

/** The root mount of the running system from /proc/self/mountinfo: its type and device number. */
export function parseRootMount(mountinfo: string): { majMin: string; type: string } | undefined {
  let found: { majMin: string; type: string } | undefined;
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    const fields = before?.split(' ') ?? [];
    if (fields[4] !== '/' || !after || !fields[2]) continue;
    found = { majMin: fields[2], type: after.split(' ')[0] ?? '' };
  }
  return found;
}

/**
 * The drivers sysfs shows along a block device (`sysDir`/dev/block/MAJ:MIN and every directory above
 * it, with the devices under a dm or md device), each mapped to its kernel option.
 */
export async function blockDeviceNeeds(sysDir: string, majMin: string): Promise<RootNeed[]> {
  const found = new Map<string, string>();
  const visit = async (devicePath: string, depth: number): Promise<void> => {
    if (depth > 8) return;
    const name = path.basename(devicePath);
    const block = await realpath(path.join(devicePath, 'partition')).then(
      () => path.dirname(devicePath),
      () => devicePath,
    );
    if (/^dm-/.test(path.basename(block))) {
      found.set('BLK_DEV_DM', name);
      const uuid = await readFile(path.join(block, 'dm/uuid'), 'utf8').catch(() => '');
      if (uuid.startsWith('CRYPT-')) found.set('DM_CRYPT', name);
    }
    if (/^md/.test(path.basename(block))) found.set('BLK_DEV_MD', name);
    for (const slave of await readdir(path.join(block, 'slaves')).catch(() => [] as string[])) {
      await visit(await realpath(path.join(block, 'slaves', slave)), depth + 1);
    }
    for (let dir = block; dir.startsWith(path.join(sysDir, 'devices/')); dir = path.dirname(dir)) {
      const driver = await readlink(path.join(dir, 'driver')).then(
        (t) => path.basename(t),
        () => undefined,
      );
      const option = driver ? DRIVER_OPTIONS[driver] : undefined;
      if (option && !found.has(option)) found.set(option, `${driver} (${path.basename(dir)})`);
    }
  };
  const start = await realpath(path.join(sysDir, 'dev/block', majMin)).catch(() => undefined);
  if (start) await visit(start, 0);
  return [...found].map(([option, via]) => ({ what: `the root device's driver ${via}`, alternatives: [[option]] }));
}

/** Every need of the target's root: from fstab under --root; on the real root, fstab for the type, else the mount, and sysfs. */
export async function rootNeeds(ctx: Context): Promise<{ needs: RootNeed[]; unknown: string[] }> {
  const fstab = await readFstabRoot(ctx);
  const mount = ctx.isHostRoot ? parseRootMount(await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')) : undefined;
  const type = fstab?.type && fstab.type !== 'auto' ? fstab.type : mount?.type;
  const needs: RootNeed[] = [];
  const unknown: string[] = [];
  const fsNeed = type ? filesystemNeed(type) : undefined;
  if (fsNeed) needs.push(fsNeed);
  else
    unknown.push(
      type ? `the root filesystem type ${type} (no known kernel option)` : 'the root filesystem type (no / in /etc/fstab)',
    );
  if (ctx.isHostRoot && mount) needs.push(...(await blockDeviceNeeds('/sys', mount.majMin)));
  else if (fstab) needs.push(...(await fstabDeviceNeeds(ctx, fstab.spec)));
  return { needs, unknown };
}
