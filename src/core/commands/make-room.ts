// The space step of add, with --make-room (config makeRoom): when a filesystem the plan writes to
// lacks room, the oldest kernels prune's rules allow to remove are removed first, inside the
// install's own transaction (a later failure puts them back too), until the plan fits.
import { stat } from '../quick-fs.js';
import type { Context } from '../context.js';
import { spaceShortages, throwShortages, type SpaceShortage } from '../pipeline/space.js';
import type { PipelineState } from '../pipeline/pipeline.js';
import { SPILL_DIR } from '../transaction/journal.js';
import type { Plan } from '../types.js';
import { listKernels } from './list.js';
import { removableVersions } from './prune.js';
import { removeInTransaction, type RemovalInTransaction } from './remove.js';

/** What the space step needs of the install state; `madeRoom` is what it removed. */
export interface SpaceState extends PipelineState {
  plan: Plan;
  madeRoom?: RemovalInTransaction;
}

/** A removable kernel and the bytes its files take on each filesystem (by device number). */
interface Candidate {
  version: string;
  bytesOn: Map<number, number>;
}

/** The removable kernels, oldest first, with the space their files hold (blocks, not lengths). */
async function candidates(ctx: Context, version: string): Promise<Candidate[]> {
  const removable = await removableVersions(ctx, [version]);
  const kernels = await listKernels(ctx);
  const result: Candidate[] = [];
  for (const v of removable) {
    const files = new Set(kernels.filter((k) => k.version === v).flatMap((k) => k.files));
    const bytesOn = new Map<number, number>();
    for (const file of files) {
      const info = await stat(file).catch(() => undefined);
      if (info) bytesOn.set(info.dev, (bytesOn.get(info.dev) ?? 0) + info.blocks * 512);
    }
    result.push({ version: v, bytesOn });
  }
  return result;
}

/**
 * The oldest candidates that free enough on every short filesystem (a kernel with nothing there is
 * passed over), and whether they are enough.
 */
function chooseForRoom(shortages: SpaceShortage[], from: Candidate[]): { versions: string[]; enough: boolean } {
  const left = new Map(shortages.map((s) => [s.dev, s.missing]));
  const versions: string[] = [];
  for (const candidate of from) {
    if ([...left.values()].every((missing) => missing <= 0)) break;
    const helps = [...left.entries()].some(([dev, missing]) => missing > 0 && (candidate.bytesOn.get(dev) ?? 0) > 0);
    if (!helps) continue;
    versions.push(candidate.version);
    for (const [dev, missing] of left) left.set(dev, missing - (candidate.bytesOn.get(dev) ?? 0));
  }
  return { versions, enough: [...left.values()].every((missing) => missing <= 0) };
}

/** What a user can do about a shortage, as the error says it. */
function remedy(ctx: Context, chosen: { versions: string[]; enough: boolean }): string {
  const names = chosen.versions.join(', ');
  if (chosen.versions.length === 0)
    return 'no installed kernel may be removed to make room (never the running, the newest or this one); free space by hand';
  if (!chosen.enough)
    return `even removing ${names} (every kernel --make-room may remove) would not be enough; free space by hand`;
  return ctx.settings.makeRoom
    ? `removing ${names} did not free enough`
    : `kinstall add --make-room would remove ${names} (oldest first), or free space with kinstall prune --keep N`;
}

/**
 * The space step: the plan fits, or (with makeRoom) old kernels go in this transaction until it
 * does. `version` is the one being installed, never removed.
 */
export async function ensureSpace(state: SpaceState, version: string, shippedHooksDir?: string): Promise<void> {
  const { ctx } = state;
  const shortages = await spaceShortages(state.plan);
  if (shortages.length === 0) return;
  const chosen = chooseForRoom(shortages, await candidates(ctx, version));
  if (!ctx.settings.makeRoom || !chosen.enough) throwShortages(shortages, () => remedy(ctx, chosen));
  const missing = shortages.map((s) => `${s.missing} bytes on ${s.dir}`).join(', ');
  ctx.log.info(`making room (${missing} missing): removing ${chosen.versions.join(', ')}, oldest first`);
  // Their backups go to the root's filesystem: beside the files they would hold on to the space.
  state.txn.spillRemovalsTo(ctx.paths.under(SPILL_DIR));
  try {
    state.madeRoom = await removeInTransaction(ctx, state.txn, chosen.versions, shippedHooksDir);
  } finally {
    state.txn.spillRemovalsTo(undefined);
  }
  // Sizes are estimates (a filesystem's own overhead): the plan must fit now, or the install stops here.
  throwShortages(await spaceShortages(state.plan), () => remedy(ctx, { versions: chosen.versions, enough: true }));
}
