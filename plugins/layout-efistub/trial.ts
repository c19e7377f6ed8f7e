// Try-once boots for the efistub layout with UEFI BootNext: activate sets BootNext to the trial
// kernel's entry and leaves BootOrder alone; the firmware deletes BootNext as it boots it, so any
// later boot takes BootOrder's first entry, the old default. Confirming puts the entry first.
import {
  KinstallError,
  type Context,
  type TransactionHandle,
  type TrialBootState,
  type TrialSupport,
} from '../../src/core/plugin-api.js';
import { firmwareDisk, restoreOnRollback } from './entry.js';
import { Efibootmgr, sameLoader, type BootEntry, type BootState } from './firmware.js';
import { efibootmgrCommand, efistubTarget, firmwareAvailable, type EfistubTarget } from './target.js';

/** The firmware entries that boot `version`'s image (one, unless someone added another by hand). */
const entriesOf = (state: BootState, target: EfistubTarget, version: string): BootEntry[] =>
  state.entries.filter((e) => sameLoader(e.loader, target.efiPath(target.imageName(version))));

/** A trial needs BootNext, which only efibootmgr on a machine with EFI variables can set. */
async function preflight(ctx: Context): Promise<string[]> {
  const firmware = await firmwareAvailable(ctx);
  if (firmware.available) return [];
  return [
    `EFI variables not available (${firmware.why}): no BootNext can be set, so no trial can be armed; install without --try, or run kinstall on the booted machine`,
  ];
}

/** BootNext names its entry: armed; first in BootOrder: default; there but neither: spent. */
async function state(ctx: Context, version: string): Promise<TrialBootState | undefined> {
  const target = await efistubTarget(ctx);
  if (!target || !(await firmwareAvailable(ctx)).available) return undefined;
  const firmware = await new Efibootmgr(ctx, efibootmgrCommand(ctx)).read();
  const nums = entriesOf(firmware, target, version).map((e) => e.num);
  if (nums.length === 0) return undefined;
  if (firmware.next !== undefined && nums.includes(firmware.next)) return 'armed';
  if (firmware.order[0] !== undefined && nums.includes(firmware.order[0])) return 'default';
  return 'spent';
}

/**
 * The entry goes first in BootOrder, and BootNext goes if it still names it (confirmed before the
 * reboot). The firmware as it was is the rollback note, so a failed or killed confirm restores it.
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
  if (!entry) throw fail(`no firmware entry boots ${target.efiPath(target.imageName(version))}`);
  restoreOnRollback(txn, efi, { before, ...(await firmwareDisk(ctx, target)) });
  const order = [entry.num, ...before.order.filter((n) => n !== entry.num)];
  if (order.join(',') !== before.order.join(',')) await efi.setOrder(order);
  if (before.next === entry.num) await efi.clearNext();
  ctx.log.info(`firmware entry Boot${entry.num} is first in BootOrder: ${version} is the default`);
}

export const efistubTrial: TrialSupport = { preflight, state, confirm };
