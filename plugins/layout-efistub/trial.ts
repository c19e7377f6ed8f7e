// Try-once boots for the efistub layout with UEFI BootNext: activate sets BootNext to the trial
// kernel's entry (labelled as a trial) and leaves the default first in BootOrder; the firmware
// deletes BootNext as it boots it, so any later boot takes the old default. Confirming makes the
// entry an ordinary one, first in BootOrder.
import {
  KinstallError,
  type Context,
  type TransactionHandle,
  type TrialBootState,
  type TrialSupport,
} from '../../src/core/plugin-api.js';
import { firmwareDisk, restoreOnRollback, TRIAL_LABEL } from './entry.js';
import { Efibootmgr, entryFor, sameLoader, type BootEntry, type BootState } from './firmware.js';
import { efibootmgrCommand, efistubTarget, firmwareAvailable, type EfistubTarget } from './target.js';

/** The firmware entries that boot `version`'s image (one, unless someone added another by hand). */
const entriesOf = (state: BootState, target: EfistubTarget, version: string): BootEntry[] =>
  state.entries.filter((e) => sameLoader(e.loader, target.efiPath(target.imageName(version))));

const isTrialEntry = (entry: BootEntry) => entry.label.endsWith(TRIAL_LABEL);

/** A trial needs BootNext, which only efibootmgr on a machine with EFI variables can set. */
async function preflight(ctx: Context): Promise<string[]> {
  const firmware = await firmwareAvailable(ctx);
  if (firmware.available) return [];
  return [
    `EFI variables not available (${firmware.why}): no BootNext can be set, so no trial can be armed; install without --try, or run kinstall on the booted machine`,
  ];
}

/**
 * BootNext names its entry: armed; first in BootOrder: default; labelled as a trial but neither:
 * spent. An ordinary entry that is not first is an older kernel, with no trial to report.
 */
async function state(ctx: Context, version: string): Promise<TrialBootState | undefined> {
  const target = await efistubTarget(ctx);
  if (!target || !(await firmwareAvailable(ctx)).available) return undefined;
  const firmware = await new Efibootmgr(ctx, efibootmgrCommand(ctx)).read();
  const entries = entriesOf(firmware, target, version);
  const nums = entries.map((e) => e.num);
  if (firmware.next !== undefined && nums.includes(firmware.next)) return 'armed';
  if (firmware.order[0] !== undefined && nums.includes(firmware.order[0])) return 'default';
  return entries.some(isTrialEntry) ? 'spent' : undefined;
}

/**
 * The trial entry is made again without its trial label (efibootmgr cannot relabel one), first in
 * BootOrder; BootNext goes if it still names it (confirmed before the reboot). The firmware as it
 * was is the rollback note, so a failed or killed confirm puts it back.
 */
async function confirm(ctx: Context, version: string, txn: TransactionHandle): Promise<void> {
  const target = await efistubTarget(ctx);
  const firmware = await firmwareAvailable(ctx);
  const fail = (why: string) => new KinstallError('ETOOL', { tool: 'efibootmgr', why });
  if (!target) throw fail(`no ESP found: cannot tell which firmware entry boots ${version}`);
  if (!firmware.available) throw fail(`EFI variables are not available (${firmware.why}); BootOrder cannot be changed`);
  const efi = new Efibootmgr(ctx, efibootmgrCommand(ctx));
  const before = await efi.read();
  const entry = entriesOf(before, target, version)[0];
  if (!entry?.loader) throw fail(`no firmware entry boots ${target.efiPath(target.imageName(version))}`);
  const device = await firmwareDisk(ctx, target);
  restoreOnRollback(txn, efi, { before, ...device });
  let num = entry.num;
  let now = before;
  if (isTrialEntry(entry)) {
    if (!device) throw fail(`cannot tell which disk and partition hold ${target.esp.dir}`);
    await efi.remove(entry.num);
    const label = entry.label.slice(0, -TRIAL_LABEL.length);
    await efi.create({ label, loader: entry.loader, args: entry.args }, device.disk, device.part);
    now = await efi.read();
    num = entryFor(now, entry.loader).num;
  }
  const order = [num, ...before.order.filter((n) => n !== entry.num && n !== num)];
  if (order.join(',') !== now.order.join(',')) await efi.setOrder(order);
  if (before.next === entry.num) await efi.clearNext();
  ctx.log.info(`firmware entry Boot${num} is first in BootOrder: ${version} boots by default`);
}

export const efistubTrial: TrialSupport = { preflight, state, confirm };
