// installkernel.log's date column: `LC_ALL=C date`'s format in the local zone. The zone's short
// name comes from Date's own string where that names it (UTC, GMT) and from Intl (en-US) otherwise;
// both print what `date` prints where en-US has the zone's name (not for BST or CET: `GMT+1`).
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { cLocaleDate } from '../../src/core/pipeline/history.js';

const savedTz = process.env.TZ;
afterEach(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

const cDate = (tz: string, date: Date) =>
  execFileSync('date', ['-d', `@${Math.floor(date.getTime() / 1000)}`], {
    env: { ...process.env, LC_ALL: 'C', TZ: tz },
    encoding: 'utf8',
  }).trim();

describe('cLocaleDate', () => {
  it.each([
    ['UTC', '2026-07-01T10:02:03Z'],
    ['Etc/UTC', '2026-12-09T23:59:59Z'],
    ['Europe/London', '2026-01-05T08:00:00Z'],
    ['America/New_York', '2026-01-05T08:00:00Z'],
    ['America/New_York', '2026-07-05T08:00:00Z'],
  ])('in %s at %s it reads as LC_ALL=C date', (tz, iso) => {
    process.env.TZ = tz;
    const date = new Date(iso);
    expect(cLocaleDate(date)).toBe(cDate(tz, date));
  });

  it('names a zone en-US has no abbreviation for by its offset, as Intl does', () => {
    process.env.TZ = 'Europe/Berlin';
    expect(cLocaleDate(new Date('2026-01-05T08:00:00Z'))).toBe('Mon Jan  5 09:00:00 GMT+1 2026');
  });
});
