// The install history: one line per install in <root>/var/log/installkernel.log.
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../context.js';
import { errorMessage } from '../errors.js';

export interface HistoryEntry {
  version: string;
  layout: string;
  initrdGenerator: string;
  installed: string[];
}

export async function appendHistory(ctx: Context, entry: HistoryEntry, action = 'install'): Promise<void> {
  const file = ctx.paths.historyLog;
  const paths = entry.installed.map((p) => ctx.paths.inTarget(p)).join(',');
  const line = [new Date().toISOString(), action, entry.version, entry.layout, entry.initrdGenerator, paths].join('\t');
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await appendFile(file, `${line}\n`);
  } catch (error) {
    ctx.log.warn(`could not append to ${file}: ${errorMessage(error)}`);
  }
}
