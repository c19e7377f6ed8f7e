// A snapshot of a directory tree: every name, type, mode, link target and content hash, so a
// test can assert that a failed run left a tree byte-identical.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';

export type TreeSnapshot = Record<string, string>;

export function snapshotTree(dir: string): TreeSnapshot {
  const out: TreeSnapshot = {};
  const walk = (current: string) => {
    for (const name of readdirSync(current).sort()) {
      const full = path.join(current, name);
      const rel = path.relative(dir, full);
      const info = lstatSync(full);
      const mode = (info.mode & 0o7777).toString(8);
      if (info.isSymbolicLink()) out[rel] = `link ${readlinkSync(full)}`;
      else if (info.isDirectory()) {
        out[rel] = `dir ${mode}`;
        walk(full);
      } else out[rel] = `file ${mode} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`;
    }
  };
  walk(dir);
  return out;
}
