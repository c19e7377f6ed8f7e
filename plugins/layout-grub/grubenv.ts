// GRUB's environment block (grubenv), read and written in GRUB's own format so GRUB's load_env and
// save_env, and grub-editenv, read what kinstall writes: the header line, `name=value` lines (a
// backslash escapes a backslash or a newline in a value), '#' padding to the block's size (1024).
import { KinstallError, type Context, quickFs } from '../../src/core/plugin-api.js';
import { grubenvPath } from './options.js';

const HEADER = '# GRUB Environment Block\n';
const BLOCK_SIZE = 1024;

/** The variables in their order, comment lines (Debian's warning), and the block's size (GRUB keeps it). */
export interface Grubenv {
  vars: Map<string, string>;
  comments: string[];
  size: number;
}

const invalid = (file: string, why: string) =>
  new KinstallError('ETOOL', { tool: 'grubenv', why: `${file} is not a GRUB environment block: ${why}` }, [
    `fix: move it aside and run: grub-editenv ${file} create`,
  ]);

/** Parses a block; `file` only names it in the error. */
export function parseGrubenv(bytes: Buffer, file: string): Grubenv {
  const text = bytes.toString('latin1');
  if (!text.startsWith(HEADER)) throw invalid(file, 'it does not start with the header line');
  const vars = new Map<string, string>();
  const comments: string[] = [];
  let at = HEADER.length;
  while (at < text.length) {
    if (text[at] === '#' || text[at] === '\n') {
      const end = text.indexOf('\n', at);
      const line = text.slice(at, end < 0 ? text.length : end);
      // The padding is '#' only; any other comment line is kept.
      if (!/^#*$/.test(line)) comments.push(line);
      at = end < 0 ? text.length : end + 1;
      continue;
    }
    const eq = text.indexOf('=', at);
    const newline = text.indexOf('\n', at);
    if (eq < 0 || (newline >= 0 && newline < eq)) throw invalid(file, `a line without "=" at byte ${at}`);
    let value = '';
    let i = eq + 1;
    for (; i < text.length && text[i] !== '\n'; i += 1) {
      if (text[i] === '\\' && i + 1 < text.length) i += 1;
      value += text[i];
    }
    vars.set(text.slice(at, eq), value);
    at = i + 1;
  }
  return { vars, comments, size: bytes.length };
}

/** The block's bytes: every variable, padded with '#' to its size (at least 1024 bytes). */
export function formatGrubenv(env: Grubenv, file: string): Buffer {
  const escape = (v: string) => v.replace(/[\\\n]/g, (c) => `\\${c}`);
  const body = [...env.vars].map(([name, value]) => `${name}=${escape(value)}\n`).join('');
  const comments = env.comments.map((c) => `${c}\n`).join('');
  const content = Buffer.from(HEADER + comments + body, 'latin1');
  const size = Math.max(env.size, BLOCK_SIZE);
  if (content.length > size) throw invalid(file, `its variables need ${content.length} bytes, more than its ${size}`);
  return Buffer.concat([content, Buffer.alloc(size - content.length, '#')]);
}

/** The target's grubenv (host path and variables); an empty block when there is none yet. */
export async function readGrubenv(ctx: Context): Promise<Grubenv & { file: string }> {
  const file = ctx.paths.under(grubenvPath(ctx));
  const bytes = await quickFs.readFile(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  return { file, ...(bytes ? parseGrubenv(bytes, file) : { vars: new Map<string, string>(), comments: [], size: BLOCK_SIZE }) };
}
