// The install history. /var/log/installkernel.log gets one line per install in the tab-separated
// columns Gentoo's installkernel writes there (its 99-write-log plugin), so the file keeps one
// format; kinstall's fuller record of installs and removals goes to /var/lib/kinstall/history.jsonl.
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../context.js';
import { errorMessage } from '../errors.js';

export interface HistoryEvent {
  action: 'install' | 'remove' | 'confirm';
  version: string;
  layout: string;
  initrdGenerator: string;
  /** Files installed or removed (host paths). */
  files: string[];
  /** The installed image and initramfs (host paths), for the installkernel.log columns. */
  image?: string;
  initrd?: string;
  /** The hooks that ran (host paths), preinst then postinst. */
  hooks: string[];
  /** An install as a trial (--try): the kernel that stays the default until it is confirmed. */
  trial?: { previous?: string };
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The zones whose short name Date's own string gives away; Intl's locale data costs ~20 ms to load. */
const SHORT_ZONE_NAMES: Record<string, string> = { 'Coordinated Universal Time': 'UTC', 'Greenwich Mean Time': 'GMT' };

/** The time zone's short name (en-US), as `Intl.DateTimeFormat` gives it. */
function shortZoneName(date: Date): string {
  const known = SHORT_ZONE_NAMES[/\(([^)]*)\)$/.exec(date.toString())?.[1] ?? ''];
  if (known) return known;
  return (
    new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(date).find((p) => p.type === 'timeZoneName')
      ?.value ?? 'UTC'
  );
}

/** `LC_ALL=C date`'s format: `Mon Dec  1 15:21:04 UTC 2025`, in local time. */
export function cLocaleDate(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const zone = shortZoneName(date);
  const time = `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  return `${DAYS[date.getDay()]} ${MONTHS[date.getMonth()]} ${String(date.getDate()).padStart(2, ' ')} ${time} ${zone} ${date.getFullYear()}`;
}

/**
 * Gentoo's columns: date, who wrote the line (Gentoo writes `gentoo`, kinstall `kinstall`), version,
 * INSTALLKERNEL_CONF_ROOT, layout, initrd generator, UKI generator, install dir, kernel and
 * initramfs relative to it (`unknown` when absent), the plugins run; each ends with a tab.
 */
function installkernelLine(ctx: Context, event: HistoryEvent, now: Date): string {
  const image = event.image ? ctx.paths.inTarget(event.image) : undefined;
  const dir = image ? path.dirname(image) : ctx.paths.inTarget(ctx.paths.boot);
  const relative = (file: string | undefined) => (file ? path.relative(dir, ctx.paths.inTarget(file)) : 'unknown');
  const notset = (value: string | undefined) => (value ? value : 'notset');
  const columns = [
    cLocaleDate(now),
    'kinstall',
    event.version,
    notset(ctx.env.INSTALLKERNEL_CONF_ROOT),
    event.layout,
    event.initrdGenerator,
    notset(ctx.settings.ukiGenerator),
    dir,
    relative(event.image),
    relative(event.initrd),
    notset(event.hooks.map((h) => ctx.paths.inTarget(h)).join(' ')),
  ];
  return `${columns.join('\t')}\t\n`;
}

/** kinstall's own record: one JSON object per line. */
function jsonLine(ctx: Context, event: HistoryEvent, now: Date): string {
  const inTarget = (files: string[]) => files.map((f) => ctx.paths.inTarget(f));
  const record = {
    time: now.toISOString(),
    action: event.action,
    version: event.version,
    layout: event.layout,
    initrdGenerator: event.initrdGenerator,
    files: inTarget(event.files),
    hooks: inTarget(event.hooks),
    ...(event.trial ? { trial: event.trial } : {}),
  };
  return `${JSON.stringify(record)}\n`;
}

/** The file kinstall's own record goes to. */
export const historyRecordFile = (ctx: Context): string => ctx.paths.under('/var/lib/kinstall/history.jsonl');

async function append(ctx: Context, file: string, text: string): Promise<void> {
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await appendFile(file, text);
  } catch (error) {
    ctx.log.warn(`could not append to ${file}: ${errorMessage(error)}`);
  }
}

/**
 * Records an event. `installkernelLog: false` when a hook (99-write-log, let run by runRedundant)
 * wrote the installkernel.log line already: never the same event twice.
 */
export async function recordHistory(ctx: Context, event: HistoryEvent, options: { installkernelLog: boolean }): Promise<void> {
  const now = new Date();
  // Two files, each appended to on its own: side by side.
  await Promise.all([
    append(ctx, historyRecordFile(ctx), jsonLine(ctx, event, now)),
    event.action === 'install' && options.installkernelLog
      ? append(ctx, ctx.paths.historyLog, installkernelLine(ctx, event, now))
      : undefined,
  ]);
}
