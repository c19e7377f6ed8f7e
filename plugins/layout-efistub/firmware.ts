// Firmware boot entries through efibootmgr: read `efibootmgr -v`, create, delete and reorder
// entries, set or delete BootNext, and find the disk and partition that hold the ESP.
import path from 'node:path';
import { KinstallError, type Context } from '../../src/core/plugin-api.js';

export interface BootEntry {
  num: string;
  label: string;
  /** The EFI path of the loader, `\`-separated, when the device path names one. */
  loader?: string;
  /** The load options shown after the device path. */
  args: string;
}

export interface BootState {
  order: string[];
  entries: BootEntry[];
  /** BootNext: the entry the firmware boots once, next time (it deletes the variable as it does). */
  next?: string;
}

/** What one kernel's entry should be. */
export interface WantedEntry {
  label: string;
  loader: string;
  args: string;
}

/**
 * Parses `efibootmgr -v`: `BootNext: 0002` (only while it is set), `BootOrder: 0001,0000` and
 * `Boot0001* Label<TAB>HD(...)/File(\EFI\...)args`.
 */
export function parseBootState(text: string): BootState {
  const state: BootState = { order: [], entries: [] };
  for (const line of text.split('\n')) {
    const next = /^BootNext:\s*([0-9A-Fa-f]{4})\s*$/.exec(line)?.[1];
    if (next) state.next = next.toUpperCase();
    const order = /^BootOrder:\s*(.*)$/.exec(line);
    if (order)
      state.order = (order[1] ?? '')
        .split(',')
        .map((n) => n.trim().toUpperCase())
        .filter(Boolean);
    const entry = /^Boot([0-9A-Fa-f]{4})\*?\s+(.*)$/.exec(line);
    if (!entry?.[1] || entry[2] === undefined) continue;
    // Label and device path: a tab in current versions, only spaces in old ones.
    const split = entry[2].includes('\t') ? entry[2].indexOf('\t') : entry[2].search(/\s+(?=[A-Za-z0-9]+\([^)]*\))/);
    const label = split < 0 ? entry[2] : entry[2].slice(0, split);
    const device = split < 0 ? '' : entry[2].slice(split);
    // efibootmgr up to 17 shows File(\path); 18 shows the path bare after the partition node.
    const file = /File\(([^)]*)\)(.*)$/.exec(device) ?? /\)\/(\\[^\s]*?\.efi)(.*)$/i.exec(device);
    state.entries.push({
      num: entry[1].toUpperCase(),
      label: label.trim(),
      loader: file?.[1],
      args: decodeArgs((file?.[2] ?? '').trim()),
    });
  }
  return state;
}

/**
 * Load options as efibootmgr shows UCS-2 text: plain, dotted (`r.o.o.t.=.`, up to 17) or as hex
 * bytes (18); decoded so they compare with the wanted command line.
 */
export function decodeArgs(shown: string): string {
  if (/^(.\.)+$/.test(shown)) return shown.replace(/(.)\./g, '$1').replace(/\0+$/, '');
  if (/^([0-9a-f]{4})+$/i.test(shown) && /^([0-9a-f]{2}00)+$/i.test(shown)) {
    return Buffer.from(shown, 'hex').toString('utf16le').replace(/\0+$/, '');
  }
  return shown;
}

export const sameLoader = (a: string | undefined, b: string) => a !== undefined && a.toLowerCase() === b.toLowerCase();

/** The argv that creates an entry, as run and as shown in warnings. */
export function createArgs(wanted: WantedEntry, disk: string, part: number | string): string[] {
  return [
    '--create',
    '--disk',
    disk,
    '--part',
    String(part),
    '--label',
    wanted.label,
    '--loader',
    wanted.loader,
    '--unicode',
    wanted.args,
  ];
}

/** A command line an admin can paste: every argument single-quoted when it needs quoting. */
export function shellLine(command: string, args: string[]): string {
  const quote = (a: string) => (/^[A-Za-z0-9_./=,:+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return [command, ...args].map(quote).join(' ');
}

export class Efibootmgr {
  constructor(
    private readonly ctx: Context,
    readonly command: string,
  ) {}

  async read(): Promise<BootState> {
    const result = await this.ctx.exec.run(this.command, ['-v']);
    return parseBootState(result.stdout);
  }

  async create(wanted: WantedEntry, disk: string, part: number): Promise<void> {
    await this.ctx.exec.run(this.command, createArgs(wanted, disk, part));
  }

  async remove(num: string): Promise<void> {
    await this.ctx.exec.run(this.command, ['--delete-bootnum', '--bootnum', num]);
  }

  async setOrder(order: string[]): Promise<void> {
    await this.ctx.exec.run(this.command, ['--bootorder', order.join(',')]);
  }

  /** BootNext = `num`: the firmware boots that entry once, at the next boot, then deletes BootNext. */
  async setNext(num: string): Promise<void> {
    await this.ctx.exec.run(this.command, ['--bootnext', num]);
  }

  /** Deletes BootNext; efibootmgr fails when it is not set, so callers check first. */
  async clearNext(): Promise<void> {
    await this.ctx.exec.run(this.command, ['--delete-bootnext']);
  }
}

/**
 * The disk and partition number of the ESP from its mount: findmnt names the partition device,
 * lsblk its parent disk; the number is what the partition's name adds (sda1, nvme0n1p1).
 */
export async function espDevice(ctx: Context, espDir: string): Promise<{ disk: string; part: number } | undefined> {
  const probe = { reject: false, readOnly: true } as const;
  const mount = await ctx.exec.run('findmnt', ['-n', '-o', 'SOURCE', '--mountpoint', espDir], probe);
  const source = mount.stdout.trim().split('\n')[0];
  if (mount.failed || !source?.startsWith('/dev/')) return undefined;
  const parent = await ctx.exec.run('lsblk', ['-n', '-d', '-o', 'PKNAME', source], probe);
  const disk = parent.stdout.trim();
  const name = path.basename(source);
  const number = disk && name.startsWith(disk) ? name.slice(disk.length).replace(/^p/, '') : '';
  if (parent.failed || !/^[0-9]+$/.test(number)) return undefined;
  return { disk: `/dev/${disk}`, part: Number(number) };
}

/** The new entry's number, found by its loader after creating it. */
export function entryFor(state: BootState, loader: string): BootEntry {
  const entry = state.entries.find((e) => sameLoader(e.loader, loader));
  if (!entry) throw new KinstallError('ETOOL', { tool: 'efibootmgr', why: `no entry for ${loader} after creating it` });
  return entry;
}
