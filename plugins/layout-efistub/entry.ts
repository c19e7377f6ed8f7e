// The efistub layout's firmware side: one boot entry per kernel, never a duplicate, first (or last)
// in BootOrder, or for a trial left where it was with BootNext naming it; removed with the kernel.
// Without EFI variables it says what to run later.
import { KinstallError, readKernelCmdline, type Context, type TransactionHandle } from '../../src/core/plugin-api.js';
import {
  createArgs,
  Efibootmgr,
  entryFor,
  espDevice,
  sameLoader,
  shellLine,
  type BootEntry,
  type BootState,
  type WantedEntry,
} from './firmware.js';
import { efibootmgrCommand, efistubOptions, firmwareAvailable, type EfistubTarget } from './target.js';

/**
 * What a trial's entry label ends with: once the firmware has used (and deleted) BootNext, the label
 * is what still tells a tried, unconfirmed kernel from an older one that is simply not first.
 */
export const TRIAL_LABEL = ' (trial)';

/**
 * The entry a kernel should have: label, loader and command line with one `initrd=` per file it
 * loads (names beside the image, in load order: the EFI stub concatenates them in that order).
 */
export async function wantedEntry(
  ctx: Context,
  target: EfistubTarget,
  version: string,
  initrds: string[],
  trial = false,
): Promise<WantedEntry> {
  const cmdline = (await readKernelCmdline(ctx))?.cmdline ?? '';
  return {
    label: `${target.label} ${version}${trial ? TRIAL_LABEL : ''}`,
    loader: target.efiPath(target.imageName(version)),
    args: [cmdline, ...initrds.map((name) => `initrd=${target.efiPath(name)}`)].filter(Boolean).join(' '),
  };
}

/** Disk and partition: the options, else the ESP's mount. */
export async function firmwareDisk(ctx: Context, target: EfistubTarget): Promise<{ disk: string; part: number } | undefined> {
  const { disk, part } = efistubOptions(ctx);
  if (disk !== undefined && part !== undefined) return { disk, part };
  const found = await espDevice(ctx, target.esp.dir);
  return found && { disk: disk ?? found.disk, part: part ?? found.part };
}

const desiredOrder = (order: string[], num: string, first: boolean) => {
  const others = order.filter((n) => n !== num);
  return first ? [num, ...others] : [...others, num];
};

/**
 * A trial's BootOrder: the one from before the run (efibootmgr --create put the new entry first),
 * the entry in the place of the stale ones it replaced, else appended at the end; BootNext boots it.
 */
function trialOrder(before: BootState, num: string, replaced: string[]): string[] {
  const mapped = before.order.map((n) => (replaced.includes(n) ? num : n));
  const order = mapped.filter((n, i) => mapped.indexOf(n) === i);
  return order.includes(num) ? order : [...order, num];
}

/** What a rollback, in this process or after a crash, needs to put the firmware back. */
export interface FirmwareNote {
  before: BootState;
  disk?: string;
  part?: number;
}

const sameEntry = (a: BootEntry, b: BootEntry) =>
  a.num === b.num && a.label === b.label && sameLoader(a.loader, b.loader ?? '') && a.args === b.args;

/**
 * Puts the firmware entries back as they were: entries this run created (or changed) go, entries
 * it deleted come back (under a new number when the firmware reused theirs), BootOrder and
 * BootNext return (BootNext set again, or deleted when it was not set).
 */
export async function restoreFirmware(efi: Efibootmgr, note: FirmwareNote): Promise<void> {
  const { before } = note;
  let now = await efi.read();
  const kept = now.entries.filter((e) => before.entries.some((b) => sameEntry(b, e)));
  for (const entry of now.entries.filter((e) => !kept.includes(e))) await efi.remove(entry.num);
  const renumbered = new Map<string, string>();
  for (const lost of before.entries.filter((b) => !kept.some((k) => k.num === b.num))) {
    if (!lost.loader || note.disk === undefined || note.part === undefined) {
      throw new Error(`firmware entry Boot${lost.num} (${lost.label}) was deleted and cannot be recreated here`);
    }
    await efi.create({ label: lost.label, loader: lost.loader, args: lost.args }, note.disk, note.part);
    const taken = new Set([...kept.map((k) => k.num), ...renumbered.values()]);
    const created = (await efi.read()).entries.find(
      (e) => !taken.has(e.num) && e.label === lost.label && sameLoader(e.loader, lost.loader ?? ''),
    );
    if (created) renumbered.set(lost.num, created.num);
  }
  now = await efi.read();
  const order = before.order.map((n) => renumbered.get(n) ?? n).filter((n) => now.entries.some((e) => e.num === n));
  if (order.join(',') !== now.order.join(',')) await efi.setOrder(order);
  const next = before.next === undefined ? undefined : (renumbered.get(before.next) ?? before.next);
  // efibootmgr refuses a BootNext naming no entry: one that named a lost entry stays deleted.
  const wantedNext = next !== undefined && now.entries.some((e) => e.num === next) ? next : undefined;
  if (wantedNext === now.next) return;
  if (wantedNext === undefined) await efi.clearNext();
  else await efi.setNext(wantedNext);
}

/** Undoes this run's firmware changes on rollback; the same note lets a recovery after a crash do it. */
export function restoreOnRollback(txn: TransactionHandle, efi: Efibootmgr, note: FirmwareNote): void {
  txn.onRollback(() => restoreFirmware(efi, note), note);
}

export async function createFirmwareEntry(
  ctx: Context,
  target: EfistubTarget,
  version: string,
  initrds: string[],
  txn: TransactionHandle,
  trial = false,
): Promise<void> {
  const wanted = await wantedEntry(ctx, target, version, initrds, trial);
  const command = efibootmgrCommand(ctx);
  const firmware = await firmwareAvailable(ctx);
  const device = await firmwareDisk(ctx, target);
  if (!firmware.available) {
    const args = createArgs(wanted, device?.disk ?? '/dev/DISK', device?.part ?? 'N');
    ctx.log.warn(
      `EFI variables are not available (${firmware.why}): the files are installed, but no firmware boot entry was created`,
    );
    ctx.log.warn(
      `to create it later, run: ${shellLine(command, args)}${device ? '' : " (DISK and N: the ESP's disk and partition number)"}`,
    );
    return;
  }
  if (!device)
    throw new KinstallError('ETOOL', { tool: 'efibootmgr', why: `cannot tell which disk and partition hold ${target.esp.dir}` });
  const efi = new Efibootmgr(ctx, command);
  const before = await efi.read();
  restoreOnRollback(txn, efi, { before, ...device });
  const { entry, state, replaced } = await ensureEntry(ctx, efi, before, wanted, device);
  const order = trial
    ? trialOrder(before, entry.num, replaced)
    : desiredOrder(state.order, entry.num, efistubOptions(ctx).bootOrderFirst !== false);
  if (order.join(',') !== state.order.join(',')) await efi.setOrder(order);
  if (trial) {
    await efi.setNext(entry.num);
    ctx.log.info(
      `BootNext = Boot${entry.num}: the firmware boots ${version} once, at the next boot; BootOrder keeps the default`,
    );
  }
}

/**
 * The wanted entry, reused when one is already exactly it, else created; the kernel's other entries
 * (an older command line or loader) are deleted, so the firmware never lists it twice.
 */
async function ensureEntry(
  ctx: Context,
  efi: Efibootmgr,
  before: BootState,
  wanted: WantedEntry,
  device: { disk: string; part: number },
): Promise<{ entry: BootEntry; state: BootState; replaced: string[] }> {
  const ours = before.entries.filter((e) => sameLoader(e.loader, wanted.loader) || e.label === wanted.label);
  const reused = ours.find((e) => e.label === wanted.label && sameLoader(e.loader, wanted.loader) && e.args === wanted.args);
  if (reused) ctx.log.info(`firmware entry Boot${reused.num} already boots ${wanted.loader}: reusing it`);
  const stale = ours.filter((e) => e !== reused);
  for (const old of stale) {
    ctx.log.info(`replacing firmware entry Boot${old.num} (${old.label}): it differs from the wanted entry`);
    await efi.remove(old.num);
  }
  const replaced = stale.map((e) => e.num);
  if (reused) return { entry: reused, state: stale.length > 0 ? await efi.read() : before, replaced };
  await efi.create(wanted, device.disk, device.part);
  const state = await efi.read();
  const entry = entryFor(state, wanted.loader);
  ctx.log.info(`created firmware entry Boot${entry.num} "${wanted.label}" for ${wanted.loader}`);
  return { entry, state, replaced };
}

export async function deleteFirmwareEntries(
  ctx: Context,
  target: EfistubTarget,
  version: string,
  txn: TransactionHandle,
): Promise<void> {
  const loader = target.efiPath(target.imageName(version));
  const command = efibootmgrCommand(ctx);
  const firmware = await firmwareAvailable(ctx);
  if (!firmware.available) {
    ctx.log.warn(`EFI variables are not available (${firmware.why}): the firmware entry for ${loader} was not removed`);
    ctx.log.warn(`to remove it later, find its number with "${command} -v" and run: ${command} --delete-bootnum --bootnum XXXX`);
    return;
  }
  const efi = new Efibootmgr(ctx, command);
  const before = await efi.read();
  const entries = before.entries.filter((e) => sameLoader(e.loader, loader));
  if (entries.length > 0) restoreOnRollback(txn, efi, { before, ...(await firmwareDisk(ctx, target)) });
  if (entries.length === 0) ctx.log.info(`no firmware entry boots ${loader}`);
  for (const entry of entries) {
    await efi.remove(entry.num);
    ctx.log.info(`removed firmware entry Boot${entry.num} (${entry.label})`);
  }
  // A trial of this kernel that never booted: BootNext must not name an entry that is gone.
  if (before.next !== undefined && entries.some((e) => e.num === before.next) && (await efi.read()).next === before.next) {
    await efi.clearNext();
    ctx.log.info(`cleared BootNext: it named the removed Boot${before.next}`);
  }
}
