// verify's judge over whole serial consoles, recorded (test/fixtures/consoles) or written line by
// line: pass only on a milestone of a working init, init-failed with the line that showed it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConsoleJudge, plainConsoleLine, type Judgement } from '../../src/core/commands/console-judge.js';
import { verifyCmdline } from '../../src/core/commands/verify.js';
import { top } from '../helpers/cli.js';

const recorded = (name: string) => readFileSync(path.join(top, 'test/fixtures/consoles', name), 'latin1');

/** Feeds a console as QEMU streams it; returns the judgement and how many lines it took. */
function judge(text: string): { judgement: Judgement | undefined; read: number } {
  const judge = new ConsoleJudge();
  const lines = text.split(/\r?\n/);
  for (const [i, line] of lines.entries()) if (judge.feed(line)) return { judgement: judge.decided, read: i + 1 };
  return { judgement: undefined, read: lines.length };
}

const initLines = (...lines: string[]) => ['[    0.41] Run /init as init process', ...lines].join('\n');

describe('the verify judge on recorded consoles', () => {
  it("Debian's kernel with dracut's systemd initramfs: pass on basic.target, not on systemd's first line", () => {
    const text = recorded('debian-dracut-systemd.log');
    const { judgement, read } = judge(text);
    expect(judgement).toEqual({
      verdict: 'pass',
      milestone: "systemd's basic system in the initramfs",
      cause: '[  OK  ] Reached target basic.target - Basic System.',
    });
    // Every line before it (systemd's banner, earlier targets, the services) was read without a verdict.
    expect(text.split('\n')[read - 1]).toContain('basic.target');
    expect(
      text
        .split('\n')
        .slice(0, read - 1)
        .some((l) => l.includes('systemd[1]: Inserted module')),
    ).toBe(true);
  });

  it("Debian's kernel with dracut's shell init: pass on dracut's banner, before the FATAL that the missing root= causes", () => {
    expect(judge(recorded('debian-dracut-shell.log')).judgement).toEqual({
      verdict: 'pass',
      milestone: "dracut's init in the initramfs",
      cause: 'dracut: Debian GNU/Linux-12',
    });
  });

  it('a kernel without cgroups under systemd: init-failed on "Failed to mount API filesystems", not pass on the autofs4 line', () => {
    expect(judge(recorded('systemd-no-cgroups.log')).judgement).toEqual({
      verdict: 'init-failed',
      cause: '[!!!!!!] Failed to mount API filesystems.',
    });
  });
});

describe('the verify judge, line by line', () => {
  it('systemd freezing, emergency mode, dracut FATAL, its debug shell and a missing kernel option or library are init-failed with the line', () => {
    const cases: Array<[string[], string]> = [
      [['[    0.5] systemd[1]: Freezing execution.'], 'systemd[1]: Freezing execution.'],
      [
        [
          '[    0.5] systemd[1]: Detected virtualization qemu.',
          '[    4.1] systemd[1]: Entering emergency mode. Exit the shell to continue.',
        ],
        'systemd[1]: Entering emergency mode. Exit the shell to continue.',
      ],
      [
        [
          '[    0.5] systemd[1]: Running in initrd.',
          'You are in emergency mode. After logging in, type "journalctl -xb" to view',
        ],
        'You are in emergency mode. After logging in, type "journalctl -xb" to view',
      ],
      [
        ["[    2.0] dracut: FATAL: Don't know how to handle 'root=/dev/vda'"],
        "dracut: FATAL: Don't know how to handle 'root=/dev/vda'",
      ],
      [['Dropping to debug shell.'], 'Dropping to debug shell.'],
      [
        ['/bin/sh: error while loading shared libraries: libc.so.6: cannot open shared object file'],
        '/bin/sh: error while loading shared libraries: libc.so.6: cannot open shared object file',
      ],
      [
        ['Cannot mount devtmpfs on /dev! Compile the kernel with CONFIG_DEVTMPFS!'],
        'Cannot mount devtmpfs on /dev! Compile the kernel with CONFIG_DEVTMPFS!',
      ],
    ];
    for (const [lines, cause] of cases)
      expect(judge(initLines(...lines)).judgement, lines.join(' | ')).toEqual({ verdict: 'init-failed', cause });
  });

  it('systemd lines without a milestone give no verdict (a boot stopped there is a timeout)', () => {
    const text = initLines(
      "[    0.5] systemd[1]: Failed to find module 'autofs4'",
      '',
      'Welcome to Debian GNU/Linux 12 (bookworm) dracut-059-4 (Initramfs)!',
      '[  OK  ] Reached target local-fs.target - Local File Systems.',
    );
    expect(judge(text).judgement).toBeUndefined();
  });

  it("dracut's initqueue starting is a milestone too, even with systemd's ellipsis", () => {
    expect(
      judge(
        initLines(
          '[    0.5] systemd[1]: Running in initrd.',
          '         Starting \x1b[0;1;39mdracut-initqueue.…ice\x1b[0m - dracut initqueue hook...',
        ),
      ).judgement,
    ).toMatchObject({ verdict: 'pass', cause: 'Starting dracut-initqueue.…ice - dracut initqueue hook...' });
  });

  it("another init (a test's marker init) passes on its first output after Run /init, as before", () => {
    expect(judge(initLines('KINSTALL-BOOT-MARKER version=6.1 efi=no')).judgement).toEqual({
      verdict: 'pass',
      milestone: "the initramfs's init",
      cause: 'KINSTALL-BOOT-MARKER version=6.1 efi=no',
    });
    // Nothing counts before Run /init, nor the kernel's own complaints about init.
    expect(
      judge('Loading, please wait...\n[    0.4] Run /init as init process\n[    0.5] Failed to execute /init (error -13)')
        .judgement,
    ).toBeUndefined();
  });

  it('an unpack error wins over the panic that follows; a panic alone is kernel-panic with its line', () => {
    expect(
      judge('[    0.3] Initramfs unpacking failed: read error\n[    0.9] Kernel panic - not syncing: No working init found.')
        .judgement,
    ).toEqual({ verdict: 'initramfs-unpack-failed', cause: 'Initramfs unpacking failed: read error' });
    expect(judge('[    0.9] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)').judgement).toEqual({
      verdict: 'kernel-panic',
      cause: 'Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)',
    });
  });

  it('after QEMU ended: timeout wins, a silent console is no-output, a panic without an initramfs is no-initramfs', () => {
    const ended = (how: { timedOut: boolean; sawOutput: boolean; hasInitramfs: boolean }, text = '') => {
      const j = new ConsoleJudge();
      for (const line of text.split('\n')) j.feed(line);
      return j.ended(how).verdict;
    };
    expect(
      ended({ timedOut: true, sawOutput: true, hasInitramfs: true }, initLines('[    0.5] systemd[1]: Running in initrd.')),
    ).toBe('timeout');
    expect(ended({ timedOut: false, sawOutput: false, hasInitramfs: true })).toBe('no-output');
    expect(
      ended(
        { timedOut: false, sawOutput: true, hasInitramfs: false },
        '[ 1.0] Kernel panic - not syncing: VFS: Unable to mount root fs',
      ),
    ).toBe('no-initramfs');
  });
});

describe("verify's console lines and command line", () => {
  it('shows console lines without colour escapes or an ellipsis-cut escape', () => {
    expect(plainConsoleLine('[\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mbasic.target\x1b[0m - Basic System.\r')).toBe(
      '[  OK  ] Reached target basic.target - Basic System.',
    );
    expect(plainConsoleLine('         Starting systemd-udev-trig…[0m - Coldplug All udev Devices...')).toBe(
      '         Starting systemd-udev-trig… - Coldplug All udev Devices...',
    );
  });

  it("drops quiet from the target's command line and makes the milestones visible; printk.time=1 last", () => {
    expect(verifyCmdline('root=UUID=1234 ro quiet splash')).toBe(
      'console=ttyS0 panic=-1 root=UUID=1234 ro splash systemd.show_status=1 printk.time=1',
    );
    expect(verifyCmdline(undefined)).toBe('console=ttyS0 panic=-1 systemd.show_status=1 printk.time=1');
  });
});
