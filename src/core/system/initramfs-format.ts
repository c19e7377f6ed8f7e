// What a prebuilt initramfs is made of: the parts the kernel unpacks one after another (an early
// uncompressed cpio with microcode, then the compressed main archive), each told by its magic,
// and whether a compressed part decompresses end to end (`gzip -t`, `zstd -t`, ... through exec).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { dir as tmpDir } from 'tmp-promise';
import type { Exec } from '../exec.js';
import type { InitramfsCompression } from '../types.js';

type Compressed = Exclude<InitramfsCompression, 'none'>;

/** Leading bytes of each compression the kernel can unpack (lz4: the legacy frame, `lz4 -l`). */
const MAGIC: Array<[Compressed, number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['gzip', [0x1f, 0x9e]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['lzma', [0x5d, 0x00, 0x00]],
  ['lzo', [0x89, 0x4c, 0x5a, 0x4f]],
  ['lz4', [0x02, 0x21, 0x4c, 0x18]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];

/** The compression whose magic starts `data` at `offset`; undefined for none known. */
export function compressionAt(data: Buffer, offset = 0): Compressed | undefined {
  for (const [name, magic] of MAGIC) {
    if (magic.every((byte, i) => data[offset + i] === byte)) return name;
  }
  return undefined;
}

/** An uncompressed part (newc or crc cpio, the formats the kernel reads) or a compressed one. */
export interface InitramfsPart {
  offset: number;
  format: InitramfsCompression;
}

export type InitramfsLayout = { parts: InitramfsPart[] } | { corrupt: string };

const CPIO_HEADER = 110;
const align4 = (n: number) => (n + 3) & ~3;

/** The offset after a cpio archive's TRAILER!!! entry, or why the archive is cut short. */
function endOfCpio(data: Buffer, start: number): number | string {
  let at = start;
  for (;;) {
    if (at + CPIO_HEADER > data.length) return `the cpio archive at byte ${start} ends inside an entry header at byte ${at}`;
    const magic = data.toString('latin1', at, at + 6);
    if (magic !== '070701' && magic !== '070702') return `the cpio archive at byte ${start} has a bad entry header at byte ${at}`;
    const field = (index: number) => Number.parseInt(data.toString('latin1', at + 6 + index * 8, at + 14 + index * 8), 16);
    const fileSize = field(6);
    const nameSize = field(11);
    if (!Number.isFinite(fileSize) || !Number.isFinite(nameSize) || nameSize < 1)
      return `the cpio archive at byte ${start} has a bad entry header at byte ${at}`;
    const name = data.toString('latin1', at + CPIO_HEADER, at + CPIO_HEADER + nameSize - 1);
    const next = align4(align4(at + CPIO_HEADER + nameSize) + fileSize);
    if (next > align4(data.length) || at + CPIO_HEADER + nameSize + fileSize > data.length) {
      return `the cpio archive at byte ${start} ends inside ${name || 'an entry'}`;
    }
    at = next;
    if (name === 'TRAILER!!!') return Math.min(at, data.length);
  }
}

/**
 * The parts of an initramfs as the kernel walks them: zero padding skipped, each uncompressed cpio
 * read to its trailer, then a compressed archive, which runs to the end (the decompressor judges it).
 */
export function readInitramfsLayout(data: Buffer): InitramfsLayout {
  const parts: InitramfsPart[] = [];
  let at = 0;
  for (;;) {
    while (at < data.length && data[at] === 0) at++;
    if (at >= data.length) break;
    const compression = compressionAt(data, at);
    if (compression) {
      parts.push({ offset: at, format: compression });
      break;
    }
    if (!['070701', '070702'].includes(data.toString('latin1', at, at + 6))) {
      const what = `0x${data.subarray(at, at + 4).toString('hex')}`;
      return { corrupt: `byte ${at} starts neither a cpio archive nor a compressed one the kernel knows (${what})` };
    }
    const end = endOfCpio(data, at);
    if (typeof end === 'string') return { corrupt: end };
    parts.push({ offset: at, format: 'none' });
    at = end;
  }
  if (parts.length === 0) return { corrupt: 'the file is empty' };
  return { parts };
}

/** The tool that tests a stream end to end, as argv after the file name is appended. */
const TEST_COMMANDS: Record<Compressed, { tool: string; args: string[]; suffix: string }> = {
  gzip: { tool: 'gzip', args: ['-t'], suffix: '.gz' },
  bzip2: { tool: 'bzip2', args: ['-t'], suffix: '.bz2' },
  xz: { tool: 'xz', args: ['-t'], suffix: '.xz' },
  lzma: { tool: 'xz', args: ['-t', '--format=lzma'], suffix: '.lzma' },
  lzo: { tool: 'lzop', args: ['-t'], suffix: '.lzo' },
  lz4: { tool: 'lz4', args: ['-t'], suffix: '.lz4' },
  zstd: { tool: 'zstd', args: ['-t'], suffix: '.zst' },
};

export interface InitramfsCheck {
  /** Every part's format, in order. */
  formats: InitramfsCompression[];
  /** Set when the file cannot be unpacked: what is wrong with it. */
  corrupt?: string;
  /** Parts whose decompressor is not installed, so their integrity is unknown. */
  untested: string[];
}

/** Reads a prebuilt initramfs's parts and tests its compressed stream with the compressor's own -t. */
export async function checkInitramfsFile(exec: Exec, file: string): Promise<InitramfsCheck> {
  const data = await readFile(file);
  const layout = readInitramfsLayout(data);
  if ('corrupt' in layout) return { formats: [], corrupt: layout.corrupt, untested: [] };
  const formats = layout.parts.map((p) => p.format);
  const last = layout.parts[layout.parts.length - 1];
  if (!last || last.format === 'none') return { formats, untested: [] };
  const command = TEST_COMMANDS[last.format];
  if (!(await exec.which(command.tool))) return { formats, untested: [`${last.format} (${command.tool} is not installed)`] };
  // The kernel skips zero padding after the stream; some compressors' -t does not, and a stream may
  // itself end in zero bytes (gzip's size field): the whole rest first, then without the padding.
  let stripped = data.length;
  while (stripped > last.offset && data[stripped - 1] === 0) stripped--;
  const ends = [...new Set([data.length, ...Array.from({ length: 9 }, (_, k) => stripped + k)])].filter((e) => e <= data.length);
  const scratch = await tmpDir({ prefix: 'kinstall-initramfs-', unsafeCleanup: true });
  try {
    const stream = path.join(scratch.path, `stream${command.suffix}`);
    let said = '';
    for (const end of ends) {
      await writeFile(stream, data.subarray(last.offset, end));
      const result = await exec.run(command.tool, [...command.args, stream], { reject: false, readOnly: true, timeout: 120_000 });
      if (result.exitCode === 0) return { formats, untested: [] };
      said ||=
        (result.stderr || result.stdout).split('\n').filter(Boolean).pop()?.replace(`${stream}: `, '') ??
        `exit code ${result.exitCode}`;
    }
    return {
      formats,
      corrupt: `its ${last.format} stream at byte ${last.offset} does not decompress (${command.tool} -t: ${said})`,
      untested: [],
    };
  } finally {
    await scratch.cleanup();
  }
}
