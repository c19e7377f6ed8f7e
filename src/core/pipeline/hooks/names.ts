// Which file names in a hook directory are hooks, and the one order they run in.

/** Leftovers of package managers and editors: never run, whatever the protocol. */
const LEFTOVERS: Array<[RegExp, string]> = [
  [/^\._cfg[0-9]{4}_/, 'a config update etc-update/dispatch-conf has not merged'],
  [/^\./, 'a hidden file'],
  [/~$/, 'an editor backup'],
  [/\.(dpkg-(old|new|dist|tmp|bak)|ucf-(old|new|dist))$/, 'a leftover of dpkg'],
  [/\.rpm(new|save|orig)$/, 'a leftover of rpm'],
  [/\.(bak|swp|orig|rej)$/, 'a backup or editor file'],
];

/** Why a file name is a leftover that never runs, or undefined. */
export function leftoverReason(name: string): string | undefined {
  return LEFTOVERS.find(([pattern]) => pattern.test(name))?.[1];
}

/** Debian's run-parts (without --lsbsysinit) runs only these names. */
export const isRunPartsName = (name: string): boolean => /^[A-Za-z0-9_-]+$/.test(name);

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isLetter = (c: string | undefined) => c !== undefined && /[A-Za-z]/.test(c);

/** The weight of one character outside a digit run: `~` first, then the end, letters, other bytes. */
function weight(c: string | undefined): number {
  if (c === undefined || isDigit(c)) return 0;
  if (c === '~') return -1;
  return isLetter(c) ? c.charCodeAt(0) : c.charCodeAt(0) + 256;
}

/** Debian's version comparison: alternating non-digit runs (by weight) and digit runs (by value). */
function compareRuns(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const diff = weight(a[i]) - weight(b[j]);
      if (diff !== 0) return diff;
      i += 1;
      j += 1;
    }
    const startA = i;
    const startB = j;
    while (isDigit(a[i])) i += 1;
    while (isDigit(b[j])) j += 1;
    const x = BigInt(a.slice(startA, i) || '0');
    const y = BigInt(b.slice(startB, j) || '0');
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

const withoutSuffix = (name: string) => name.replace(/(\.[A-Za-z~][A-Za-z0-9~]*)*$/, '');

/**
 * `sort -V` in the C locale, the order installkernel and kernel-install run plugins in: names
 * compared without their file suffixes first (`.install`), digit runs by value, so `5-a` runs
 * before `10-b` and `50-dracut.install` before `50-dracut-extra`.
 */
export function compareHookNames(a: string, b: string): number {
  if (a === b) return 0;
  const bySuffixless = compareRuns(withoutSuffix(a), withoutSuffix(b));
  if (bySuffixless !== 0) return bySuffixless;
  const whole = compareRuns(a, b);
  if (whole !== 0) return whole;
  return a < b ? -1 : 1;
}
