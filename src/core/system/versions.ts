// Kernel release strings: what a valid one looks like, and how releases sort.
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { stagedVersions } from './neutral-location.js';

const MAX_VERSION_BYTES = 64;

/** A release becomes a file name in /boot and the ESP: no separators, no traversal, no control bytes. */
export function checkVersionString(version: string): void {
  const fail = (why: string) => {
    throw new KinstallError('EBADVERSION', { version: JSON.stringify(version).slice(1, -1), why });
  };
  if (version === '') fail('it is empty');
  if (Buffer.byteLength(version) > MAX_VERSION_BYTES) fail(`it is longer than ${MAX_VERSION_BYTES} bytes`);
  if (version.includes('/')) fail('it contains "/"');
  if (version.includes('..')) fail('it contains ".."');
  if (/[\s\p{Cc}]/u.test(version)) fail('it contains whitespace or control characters');
  if (version.startsWith('-') || version.startsWith('.')) fail('it must not start with "-" or "."');
}

/** Natural version order: 6.1.10 after 6.1.9, -rc before the release. */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => v.split(/([0-9]+)/).filter((p) => p !== '');
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i += 1) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return y?.startsWith('-rc') ? 1 : -1;
    if (y === undefined) return x.startsWith('-rc') ? -1 : 1;
    const nx = /^[0-9]+$/.test(x) ? Number(x) : undefined;
    const ny = /^[0-9]+$/.test(y) ? Number(y) : undefined;
    if (nx !== undefined && ny !== undefined) {
      if (nx !== ny) return nx - ny;
    } else if (x !== y) {
      if (x.startsWith('-rc') !== y.startsWith('-rc')) return x.startsWith('-rc') ? -1 : 1;
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

/** Under --root there is no running kernel to default to: take the newest staged one. */
export async function newestStagedVersion(ctx: Context): Promise<string> {
  const newest = (await stagedVersions(ctx)).sort(compareVersions).at(-1);
  if (!newest) {
    throw new KinstallError('ENOVERSION', {
      why: `no kernel is staged in ${ctx.paths.modulesBase}; give VERSION and IMAGE, or run kinstall stage`,
    });
  }
  return newest;
}
