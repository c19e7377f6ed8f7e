// A prebuilt initramfs for tests that only move one around: a real newc cpio (the kernel's format,
// which preflight checks) holding one file whose content is `label`, so each fixture is distinct.
// Written here rather than by cpio(1), whose inode numbers and times would differ between calls.

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

export function initramfsFixture(label: string): Buffer {
  return Buffer.concat([newcEntry('label', Buffer.from(label), 0o100644), newcEntry('TRAILER!!!', Buffer.alloc(0), 0)]);
}
