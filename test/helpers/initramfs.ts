// Hand-made initramfs images for tests: real newc cpio archives (the kernel's format, which
// preflight checks), written here rather than by cpio(1), whose inode numbers and times would differ
// between calls; and a verify fixture whose boot behaviour is known exactly, unlike a dracut image
// whose output depends on its modules and the machine's speed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { testKbuild } from './kbuild.js';

function newcEntry(name: string, content: Buffer, mode: number): Buffer {
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const nameBytes = Buffer.from(`${name}\0`);
  // magic, then ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  const fields = [1, mode, 0, 0, 1, 0, content.length, 0, 0, 0, 0, nameBytes.length, 0];
  const header = Buffer.from(`070701${fields.map(hex).join('')}`, 'latin1');
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const head = Buffer.concat([header, nameBytes]);
  return Buffer.concat([head, pad(head.length), content, pad(content.length)]);
}

/** A newc archive of these files, then the trailer. */
function newcArchive(files: Array<[string, Buffer, number]>): Buffer {
  return Buffer.concat([
    ...files.map(([name, content, mode]) => newcEntry(name, content, mode)),
    newcEntry('TRAILER!!!', Buffer.alloc(0), 0),
  ]);
}

/** A prebuilt initramfs for tests that only move one around: one file whose content is `label`. */
export function initramfsFixture(label: string): Buffer {
  return newcArchive([['label', Buffer.from(label), 0o100644]]);
}

/**
 * A static x86-64 ELF executable that calls pause(2) forever: an init that never prints a byte
 * and never exits (so the kernel never panics). 64-byte ELF header, one 56-byte program header
 * loading the whole file at 0x400000, then the code: mov eax, 34 (pause); syscall; jmp back.
 */
function silentInit(): Buffer {
  const code = Buffer.from([0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7]);
  const base = 0x400000n;
  const headers = 64 + 56;
  const elf = Buffer.alloc(headers + code.length);
  elf.write('\x7fELF', 0, 'latin1');
  elf[4] = 2; // 64-bit
  elf[5] = 1; // little-endian
  elf[6] = 1; // ELF version
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(0x3e, 18); // EM_X86_64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(base + BigInt(headers), 24); // entry: the code
  elf.writeBigUInt64LE(64n, 32); // program headers right after the ELF header
  elf.writeUInt16LE(64, 52);
  elf.writeUInt16LE(56, 54);
  elf.writeUInt16LE(1, 56);
  elf.writeUInt32LE(1, 64); // PT_LOAD
  elf.writeUInt32LE(5, 68); // R+X
  elf.writeBigUInt64LE(base, 80);
  elf.writeBigUInt64LE(base, 88);
  elf.writeBigUInt64LE(BigInt(elf.length), 96);
  elf.writeBigUInt64LE(BigInt(elf.length), 104);
  elf.writeBigUInt64LE(0x1000n, 112);
  code.copy(elf, headers);
  return elf;
}

/** A newc cpio holding only /init = silentInit(): the kernel runs it, then the console stays quiet. */
export function silentInitramfs(): Buffer {
  return newcArchive([['init', silentInit(), 0o100755]]);
}

/**
 * A newc cpio whose /init is a shell script (dash and the libraries it needs, /dev/kmsg and
 * /dev/console as nodes), built by the kernel's own usr/gen_init_cpio from a kbuild O= tree, so
 * no privilege is needed for the device nodes. The script writes kmsg lines with `kmsg LEVEL TEXT`.
 */
export function scriptedInitramfs(kbuildDir: string, script: string): Buffer {
  const tree = mkdtempSync(path.join(os.tmpdir(), 'kinstall-scripted-'));
  try {
    const init = path.join(tree, 'init');
    writeFileSync(init, `#!/bin/sh\nkmsg() { echo "<$1>$2" > /dev/kmsg; }\n${script}\n`, { mode: 0o755 });
    const libs = execFileSync('ldd', ['/usr/bin/dash'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /(\/\S+) \(0x/.exec(l)?.[1])
      .filter((l): l is string => l !== undefined)
      // The loader looks in /usr/lib/… on a merged-/usr system, in /lib/… on another: both.
      .flatMap((l) => (l.startsWith('/lib/') ? [l, `/usr${l}`] : [l]));
    const dirs = new Set(['/bin', '/dev', '/proc', '/sys', '/lib', '/usr', '/usr/lib', ...libs.map((l) => path.dirname(l))]);
    const spec = [
      ...[...dirs].map((d) => `dir ${d} 0755 0 0`),
      'nod /dev/console 0600 0 0 c 5 1',
      'nod /dev/kmsg 0600 0 0 c 1 11',
      'file /bin/sh /usr/bin/dash 0755 0 0',
      `file /init ${init} 0755 0 0`,
      ...libs.map((l) => `file ${l} ${realpathSync(l)} 0755 0 0`),
    ];
    writeFileSync(path.join(tree, 'spec'), `${spec.join('\n')}\n`);
    return execFileSync(path.join(kbuildDir, 'usr/gen_init_cpio'), [path.join(tree, 'spec')], { maxBuffer: 64 * 1024 * 1024 });
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
}

/**
 * An early microcode image as distributions ship it (/boot/intel-uc.img): an uncompressed newc
 * archive holding kernel/x86/microcode/GenuineIntel.bin, here a few bytes no CPU takes (the kernel
 * skips an update it cannot use, so a boot still goes on).
 */
export function microcodeFixture(label = 'kinstall-test-microcode'): Buffer {
  return newcArchive([
    ['kernel', Buffer.alloc(0), 0o40755],
    ['kernel/x86', Buffer.alloc(0), 0o40755],
    ['kernel/x86/microcode', Buffer.alloc(0), 0o40755],
    ['kernel/x86/microcode/GenuineIntel.bin', Buffer.from(label), 0o100644],
  ]);
}

/** The line the good trial initramfs's init writes: it proves init ran (the tag is on the command line). */
export const TRY_MARKER = 'KINSTALL-TRY-MARKER';

/**
 * The initramfs of a kernel that comes up in a try-once boot test: its /init writes TRY_MARKER to
 * the kernel log (the serial console shows it) and then waits forever, so the boot stays up until
 * the test ends it. Which kernel ran is told by its command line (`kinstall.tag=…`), not by this.
 * Built with the self-built kernel's usr/gen_init_cpio (the test kbuild tree unless told).
 */
export function goodTryInitramfs(kbuildDir = testKbuild().out): Buffer {
  return scriptedInitramfs(kbuildDir, `kmsg 3 "${TRY_MARKER}"\nwhile :; do read -r _ || :; done`);
}

/**
 * The initramfs of a kernel that fails a trial boot: a real newc archive (preflight accepts it) with
 * no /init, so the kernel looks for a root device, finds none and panics ("VFS: Unable to mount
 * root fs"); with `panic=1` on its command line it reboots a second later, into the firmware again.
 */
export function badTryInitramfs(): Buffer {
  return newcArchive([['no-init-here', Buffer.from('this initramfs has no /init on purpose\n'), 0o100644]]);
}
