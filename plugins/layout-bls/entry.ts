// Boot Loader Specification Type #1 entry files: written from the target's facts, read back for list.
import { readKernelCmdline, readMachineId, readOsRelease, type Context } from '../../src/core/plugin-api.js';

export interface EntryFields {
  title: string;
  version: string;
  machineId?: string;
  sortKey?: string;
  options?: string;
  linux: string;
  /** In load order: early microcode first, then the initramfs. */
  initrds: string[];
}

/** The entry's facts from os-release, the machine id and the command line. */
export async function entryFields(ctx: Context, version: string, linux: string, initrds: string[]): Promise<EntryFields> {
  const os = await readOsRelease(ctx);
  const cmdline = await readKernelCmdline(ctx);
  return {
    title: os.PRETTY_NAME || os.NAME || 'Linux',
    version,
    machineId: await readMachineId(ctx),
    sortKey: os.IMAGE_ID || os.ID || undefined,
    options: cmdline?.cmdline || undefined,
    linux,
    initrds,
  };
}

export function formatEntry(fields: EntryFields): string {
  const lines: Array<[string, string | undefined]> = [
    ['title', fields.title],
    ['version', fields.version],
    ['machine-id', fields.machineId],
    ['sort-key', fields.sortKey],
    ['options', fields.options],
    ['linux', fields.linux],
    ...fields.initrds.map((initrd): [string, string] => ['initrd', initrd]),
  ];
  return lines
    .filter((line): line is [string, string] => line[1] !== undefined)
    .map(([key, value]) => `${key} ${value}\n`)
    .join('');
}

/** Key → values (initrd may repeat); comments and blank lines skipped, as the spec reads them. */
export function parseEntry(text: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = /^(\S+)\s+(.*)$/.exec(line);
    if (!match?.[1] || match[2] === undefined) continue;
    fields.set(match[1], [...(fields.get(match[1]) ?? []), match[2]]);
  }
  return fields;
}
