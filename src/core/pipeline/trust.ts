// When kinstall runs as root it executes hooks and loads config files and plugins: each must be
// owned by root and not writable by group or others, or anyone who can write it owns the machine.
import { lstat, stat } from '../quick-fs.js';
import { KinstallError } from '../errors.js';

/** One line saying what is wrong with a file kinstall would run or load, or undefined. */
async function untrustedReason(file: string): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const info = await stat(file).catch(() => undefined);
  if (!info) return undefined;
  const link = await lstat(file).catch(() => undefined);
  const owners = [info, ...(link?.isSymbolicLink() ? [link] : [])];
  if (owners.some((s) => s.uid !== 0)) return `${file} is owned by uid ${info.uid}, not root (fix: chown root:root ${file})`;
  if (info.mode & 0o022) {
    const mode = (info.mode & 0o7777).toString(8).padStart(4, '0');
    return `${file} is writable by ${info.mode & 0o002 ? 'others' : 'its group'} (mode ${mode}; fix: chmod go-w ${file})`;
  }
  return undefined;
}

export async function assertTrusted(file: string, what: string): Promise<void> {
  const reason = await untrustedReason(file);
  if (reason) throw new KinstallError('EINSECURE', { what, why: reason });
}
