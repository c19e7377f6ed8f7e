// Recognises kernel images by their headers and reads the release they were built as:
// x86 bzImage (setup header), arm64 Image, ELF vmlinux, PE/EFI-stub and Unified Kernel Images.
import { open, stat } from 'node:fs/promises';
import { KinstallError } from '../errors.js';
import type { KernelImageInfo } from '../types.js';

const BZIMAGE_MAGIC_OFFSET = 0x202;
const BZIMAGE_VERSION_POINTER = 0x20e;
const BZIMAGE_XLOADFLAGS = 0x236;
const ARM64_MAGIC_OFFSET = 0x38;
const PE_POINTER_OFFSET = 0x3c;

async function readAll(file: string, limit: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(limit);
    const { bytesRead } = await handle.read(buffer, 0, limit, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function cString(buffer: Buffer, offset: number): string {
  const end = buffer.indexOf(0, offset);
  return buffer.toString('latin1', offset, end === -1 ? Math.min(buffer.length, offset + 256) : end);
}

/** The release from a "Linux version X ..." banner or a bare "X (builder) #1 ..." string. */
function releaseFrom(text: string): string | undefined {
  const release = text.replace(/^Linux version /, '').split(/\s/)[0];
  return release && /^[0-9][\x21-\x7e]*$/.test(release) ? release : undefined;
}

export function readKernelVersionFromBzImage(header: Buffer): string | undefined {
  if (header.length < BZIMAGE_VERSION_POINTER + 2) return undefined;
  const pointer = header.readUInt16LE(BZIMAGE_VERSION_POINTER);
  if (pointer === 0) return undefined;
  const offset = pointer + 0x200;
  if (offset >= header.length) return undefined;
  return releaseFrom(cString(header, offset));
}

function findBanner(buffer: Buffer): string | undefined {
  const at = buffer.indexOf('Linux version ');
  return at === -1 ? undefined : releaseFrom(cString(buffer, at));
}

interface PeSection {
  name: string;
  offset: number;
  size: number;
}

/** An ELF header's e_machine, as kinstall names architectures. */
export const elfMachineArch = (machine: number): KernelImageInfo['arch'] =>
  machine === 0x3e ? 'x86_64' : machine === 0xb7 ? 'arm64' : machine === 3 ? 'x86' : 'unknown';

/** The COFF header's Machine field, as kinstall names architectures. */
function readPeArch(buffer: Buffer): KernelImageInfo['arch'] {
  const pe = buffer.readUInt32LE(PE_POINTER_OFFSET);
  const machine = pe + 6 <= buffer.length ? buffer.readUInt16LE(pe + 4) : 0;
  return machine === 0x8664 ? 'x86_64' : machine === 0xaa64 ? 'arm64' : machine === 0x14c ? 'x86' : 'unknown';
}

function readPeSections(buffer: Buffer): PeSection[] | undefined {
  if (buffer.length < 0x40 || buffer.toString('latin1', 0, 2) !== 'MZ') return undefined;
  const pe = buffer.readUInt32LE(PE_POINTER_OFFSET);
  if (pe + 24 > buffer.length || buffer.toString('latin1', pe, pe + 4) !== 'PE\0\0') return undefined;
  const sectionCount = buffer.readUInt16LE(pe + 6);
  const optionalSize = buffer.readUInt16LE(pe + 20);
  const table = pe + 24 + optionalSize;
  const sections: PeSection[] = [];
  for (let i = 0; i < sectionCount; i += 1) {
    const at = table + i * 40;
    // A section table cut off by the end of the file: a fragment, not an image.
    if (at + 40 > buffer.length) return undefined;
    sections.push({
      name: buffer.toString('latin1', at, at + 8).replace(/\0+$/, ''),
      size: buffer.readUInt32LE(at + 16),
      offset: buffer.readUInt32LE(at + 20),
    });
  }
  return sections;
}

export async function inspectKernelImage(file: string): Promise<KernelImageInfo> {
  const info = await stat(file).catch(() => undefined);
  if (!info || !info.isFile()) throw new KinstallError('ENOIMAGE', { path: file });
  if (info.size === 0) throw new KinstallError('ENOTKERNEL', { path: file, why: 'the file is empty' });
  // Headers sit in the first pages; only uncompressed images need a scan for the banner.
  const buffer = await readAll(file, 64 * 1024);
  const whole = async () => (info.size > buffer.length ? readAll(file, Math.min(info.size, 128 * 1024 * 1024)) : buffer);
  const base = { path: file, size: info.size };
  const sections = readPeSections(buffer);

  if (
    buffer.length > BZIMAGE_MAGIC_OFFSET + 4 &&
    buffer.toString('latin1', BZIMAGE_MAGIC_OFFSET, BZIMAGE_MAGIC_OFFSET + 4) === 'HdrS'
  ) {
    const version = readKernelVersionFromBzImage(buffer);
    if (!version) throw new KinstallError('ENOTKERNEL', { path: file, why: 'bzImage header has no version string' });
    const xloadflags = buffer.length > BZIMAGE_XLOADFLAGS + 2 ? buffer.readUInt16LE(BZIMAGE_XLOADFLAGS) : 0;
    return { ...base, format: 'bzImage', arch: xloadflags & 1 ? 'x86_64' : 'x86', version, efiStub: sections !== undefined };
  }
  if (sections?.some((s) => s.name === '.linux')) {
    const uname = sections.find((s) => s.name === '.uname');
    const version = uname ? releaseFrom(cString(await whole(), uname.offset).slice(0, uname.size)) : undefined;
    return { ...base, format: 'uki', arch: readPeArch(buffer), version, efiStub: true };
  }
  if (
    buffer.length > ARM64_MAGIC_OFFSET + 4 &&
    buffer.toString('latin1', ARM64_MAGIC_OFFSET, ARM64_MAGIC_OFFSET + 4) === 'ARM\x64'
  ) {
    return { ...base, format: 'arm64-image', arch: 'arm64', version: findBanner(await whole()), efiStub: sections !== undefined };
  }
  if (buffer.toString('latin1', 0, 4) === '\x7fELF') {
    const version = findBanner(await whole());
    if (!version) throw new KinstallError('ENOTKERNEL', { path: file, why: 'ELF file without a Linux version banner' });
    const machine = buffer.length > 20 ? buffer.readUInt16LE(18) : 0;
    return { ...base, format: 'vmlinux', arch: elfMachineArch(machine), version, efiStub: false };
  }
  if (sections && sections.length > 0) {
    return { ...base, format: 'pe', arch: readPeArch(buffer), version: findBanner(await whole()), efiStub: true };
  }
  const why = buffer.length <= BZIMAGE_MAGIC_OFFSET ? 'too short to hold a kernel header' : 'no bzImage, arm64, ELF or PE header';
  throw new KinstallError('ENOTKERNEL', { path: file, why });
}
