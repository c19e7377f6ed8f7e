// The staging-area contract: what a hook leaves there (initrd*, microcode*, uki.efi) is an output
// kinstall installs instead of making it again. Each file is credited to the hook that wrote it.
import { readdir, stat } from '../../quick-fs.js';
import path from 'node:path';

/** The names a hook may leave as outputs, as installkernel and kernel-install define them. */
const OUTPUT = /^(initrd|microcode|uki\.efi$)/;

export interface StagedOutput {
  /** Host path in the staging area. */
  file: string;
  /** The hook that left it. */
  hook: string;
}

/** name → "mtime size", to see what a hook wrote or replaced. */
export type StagingSnapshot = Map<string, string>;

export async function snapshotStaging(stagingArea: string): Promise<StagingSnapshot> {
  const snapshot: StagingSnapshot = new Map();
  for (const name of await readdir(stagingArea).catch(() => [] as string[])) {
    if (!OUTPUT.test(name)) continue;
    const info = await stat(path.join(stagingArea, name)).catch(() => undefined);
    if (info?.isFile()) snapshot.set(name, `${info.mtimeMs} ${info.size}`);
  }
  return snapshot;
}

/** The outputs that appeared or changed between two snapshots. */
export function newOutputs(stagingArea: string, before: StagingSnapshot, after: StagingSnapshot, hook: string): StagedOutput[] {
  return [...after]
    .filter(([name, state]) => before.get(name) !== state)
    .map(([name]) => ({ file: path.join(stagingArea, name), hook }));
}
