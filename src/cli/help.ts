// All --help texts in one place; README and man/kinstall.8 say the same.

const commonOptions = `Options (every command):
  --root DIR          operate on the system mounted at DIR (/boot, /etc/kernel, /lib/modules,
                      /var/log and the ESP all resolved under DIR); default /. A file argument
                      (IMAGE, SYSTEM_MAP, --initrd, --build-dir, --modules-dir) already inside DIR
                      is taken as is, else DIR/PATH when it exists, else PATH on the host; a boot
                      dir (DIR, --boot-dir, --esp) is always inside DIR, with or without DIR in front
  --layout NAME       auto, compat, grub, bls (alias systemd-boot), uki, efistub, lilo
                      (default: install.conf's layout=, else auto)
  --initramfs NAME    auto, dracut or none (default: install.conf's initrd_generator=, else auto)
  --initrd FILE       install this prebuilt initramfs instead of generating one (repeatable;
                      files are concatenated in order, microcode first)
  --boot-dir DIR      the boot dir as the target system names it; default /boot
  --esp DIR           the EFI system partition (ESP layouts); default BOOT_ROOT
  --cmdline TEXT      kernel command line for layouts that write one
  --config FILE       kinstall config file (default: searched in <root>/etc/kinstall/)
  --keep N            after installing, remove the oldest kernels beyond N
  --make-room         when the new kernel does not fit on the boot dir or ESP, remove the oldest
                      kernels (as prune picks them) in the same transaction until it does
  --try               (add) install the kernel as a trial: it boots next, once; the previous
                      default stays the default until kinstall confirm (config tryOnce; unset:
                      on where a confirm unit is enabled)
  --depmod WHEN       auto (default): run depmod only when the module index is missing or older
                      than a module, modules.order or modules.builtin; always: every install
  --dry-run           resolve, check and print the plan; change nothing
  --force             override a refusal that guards against a likely mistake: install when
                      VERSION differs from the image's own version, or when the bootability
                      check finds the kernel's config cannot boot the target (a warning per
                      option); remove the running kernel
  --json              print the result as JSON on stdout (an error as {"error": {code,
                      exitCode, message, details}})
  -v, --verbose       debug logging, tool output and stack traces
  -h, --help          this help
      --version       print kinstall's version`;

export const kinstallHelp = `Usage: kinstall [COMMAND] [OPTIONS] [ARGS]

Install Linux kernels: stage, depmod, initramfs, bootloader layout and hooks, rolled back on failure.

Commands:
  add [VERSION] [IMAGE]       install a kernel (the default command). With IMAGE, the image (and
                              System.map and .config beside it) is staged first. Without IMAGE,
                              the kernel staged in <root>/lib/modules/VERSION/ is installed.
                              Without VERSION: the running kernel (uname -r), or under --root
                              the newest kernel staged there.
  stage --build-dir DIR       copy a built kernel (a make O=DIR tree) to the neutral location
        [--modules-dir DIR]   <root>/lib/modules/KVER/{vmlinuz,System.map,config}, and an
                              installed modules tree (make modules_install INSTALL_MOD_PATH=DIR)
  inspect IMAGE               print an image's kernel version, format, architecture, EFI stub, size
  list                        every installed kernel: version, layout, size, default/running and
                              trial state, entry
  status                      each kernel's state: default, running, trial pending, trial booted,
                              trial failed (fell back), confirmed
  confirm [VERSION]           after the reboot: make the kernel that booted (default: the running
                              one; required under --root) the default, if it is on trial
  remove VERSION              remove a kernel from its layout (with layout=auto, from every layout
        [--keep-modules]      holding it; bootloader updated, firmware entry deleted) and its
                              neutral location and modules (unless --keep-modules, or a package
                              manager owns them: those stay, and it says so); the running
                              kernel needs --force
  prune --keep N              remove the oldest kernels beyond N (never the running one, never
                              the newest);
                              add --keep N (or keep = N in the config) does this after installing
  verify VERSION              boot the installed kernel and initramfs in QEMU (no disk, serial
        [--timeout SECONDS]   console) and report whether the initramfs's init was reached
  recover                     roll back (or finish) a run that was killed or lost power,
                              from its intent journal; every changing command does this first
  help [COMMAND]              this help, or a command's

${commonOptions}

Layouts:
  compat    /boot/vmlinuz-KVER, System.map-KVER, config-KVER, initramfs-KVER.img (.old kept)
  grub      compat files, then grub-mkconfig (chroot under --root); grub.cfg~ kept
  bls       Boot Loader Specification entry for systemd-boot: ESP/TOKEN/KVER/{linux,initrd},
            ESP/loader/entries/TOKEN-KVER[+TRIES].conf
  uki       a Unified Kernel Image in ESP/EFI/Linux/: dracut --uefi builds it with its own
            initramfs; --initrd FILE (or an initrd beside the image) goes in as is, via objcopy;
            or a prebuilt UKI
  efistub   ESP/EFI/VENDOR/vmlinuz-KVER.efi and one firmware entry (efibootmgr), no duplicates
  lilo      compat files, vmlinuz/vmlinuz.old links always kept, then lilo (lilo -t first)
  auto      uki for a UKI image; bls when the ESP has loader/; lilo when /etc/lilo.conf exists;
            grub when <boot>/grub/grub.cfg exists; else compat

Exit codes: 0 success, 2 usage, 3 bad input, 4 preflight check failed (also: the kernel's config
cannot boot the target, lock not obtained, unsafe file ownership or mode, qemu missing), 5 a tool or hook failed or a signal arrived and
everything was rolled back, 6 rollback failed or an interrupted run's journal cannot be used,
7 installed but a postinst hook or the pruning of old kernels failed, 8 verify: the kernel did
not reach a working init's milestone, 9 installkernel --all: some kernels installed, the others failed and were rolled back.

One kinstall runs at a time per root (an flock on <root>/run/lock/kinstall.lock); another waits up to
lockTimeout seconds (default 600). SIGINT or SIGTERM stops the run at its next safe point and
rolls it back; a second signal does not cut the rollback short.

Examples:
  kinstall stage --build-dir /var/tmp/linux-build
  kinstall add 6.1.0-56-cloud-amd64
  kinstall add --layout grub --initramfs dracut --root /mnt/gentoo 6.1.0-56-cloud-amd64
  kinstall --layout grub               # reinstall the running kernel for GRUB
  kinstall inspect /boot/vmlinuz-6.1.0-56-cloud-amd64
  kinstall add --dry-run 6.1.0-56-cloud-amd64 arch/x86/boot/bzImage
  kinstall verify 6.1.0-56-cloud-amd64 # before the reboot: boot it in QEMU
  kinstall add --try 6.1.0-57-cloud-amd64  # after the reboot: tried once, else the old default boots
  kinstall confirm                     # on the booted system (the confirm unit does it)`;

export const commandHelp: Record<string, string> = {
  add: `Usage: kinstall add [VERSION] [IMAGE] [--initrd FILE]... [OPTIONS]

Install a kernel: resolve, preflight, bootability, stage, depmod, preinst hooks, initramfs, plan,
commit, activate the bootloader, postinst hooks. Any failure before the end restores every file.
Hooks: kinstall's hooks.d, Gentoo's {preinst,postinst}.d plugins and systemd's install.d plugins,
in one order; --dry-run lists them, and each skipped one with its reason (docs/hooks.md).
Under --root the target's hooks run inside it (chroot with /proc, /sys, /dev in a private mount
namespace) with the target's paths; one it cannot run stops the run (ETARGETHOOKS, exit 4) unless
the config key targetHooks is "skip". kinstall's own hooks.d runs on the host.

The bootability check reads the kernel's config (.config with the image or in its build tree,
include/config/auto.conf, or <root>/lib/modules/VERSION/config) before anything changes and
checks it against the target: the root filesystem of /etc/fstab (or the running root) and the
root device's drivers built in (=y), or =m with an initramfs that loads modules; BLK_DEV_INITRD
and the RD_* option of the initramfs's compression (dracut's configured or default compressor, a
prebuilt image's magic); the options systemd needs when dracut's initramfs runs it; DEVTMPFS for
dracut; EFI and EFI_STUB for efistub and uki; MODULES when there are modules. Every unmet option
is named in one EUNBOOTABLE error (exit 4); --force or bootabilityCheck = "warn" installs anyway
with warnings. A kernel without a config gets one warning. A truncated or corrupt prebuilt
initramfs fails preflight (exit 4).

--try installs the kernel as a trial: it boots next, once, and the previous default stays the
default until kinstall confirm runs on the booted system; if the trial does not come up, every
later boot is the previous kernel. bls/uki: boot counting (TOKEN-KVER+1); grub: grubenv
next_entry (needs GRUB_DEFAULT=saved); efistub: BootNext; lilo: lilo -R; compat refuses it
(ENOTRIAL, exit 4). Config tryOnce (KINSTALL_TRY_ONCE); unset, it is on where a confirm unit is
enabled in the target. The first kernel, with nothing to fall back to, is installed as the default.

${commonOptions}`,
  stage: `Usage: kinstall stage --build-dir DIR [--modules-dir DIR] [--root DIR] [--dry-run]

Read include/config/kernel.release, arch/x86/boot/bzImage (arm64: arch/arm64/boot/Image),
System.map and .config from a kbuild output tree and copy them to
<root>/lib/modules/KVER/{vmlinuz,System.map,config}. Files that already hold the same content
are left untouched. Nothing is written into the build tree. DIR is the make O= output tree, not
the source tree. --modules-dir DIR copies the modules that make modules_install
INSTALL_MOD_PATH=DIR put in DIR/lib/modules/KVER; when the build has modules (modules.order) and
none are installed for KVER, a warning says so (kinstall add needs them for the initramfs).`,
  list: `Usage: kinstall list [--layout NAME] [--json] [--root DIR]

Every installed kernel as the layouts find it, newest first: version, layout, total size,
whether it is the default and whether it is running (only without --root), a trial's state
(trial-pending, trial-booted, trial-failed, confirmed), and its entry or image.
With --layout NAME (or layout= in install.conf), only the kernels that layout installed.`,
  status: `Usage: kinstall status [--layout NAME] [--json] [--root DIR]

Each installed kernel's state in words: default, running, trial pending (it boots next, once),
trial booted, not confirmed yet (it is running), trial failed (fell back: its one boot was used
and it is not running; under --root, a used trial that was not confirmed), confirmed. After a
fallback, the first kinstall command warns once. --json: {version, layout, default, running,
trial, state, entry}.`,
  confirm: `Usage: kinstall confirm [VERSION] [--dry-run] [--json] [--root DIR]

After the reboot: make the kernel that booted the default of every later boot, if it was installed
as a trial (kinstall add --try); otherwise do nothing, exit 0. VERSION defaults to the running
kernel; under --root it is required. The shipped units run it once the system is up:
units/kinstall-confirm.service (after boot-complete.target, as systemd-bless-boot) and
units/kinstall-confirm.openrc (default runlevel). bls/uki: the entry or UKI loses its boot counter;
grub: saved_entry; efistub: the entry first in BootOrder; lilo: lilo with lilo.conf's default.
Through the transaction: a failure or a kill leaves the previous default.`,
  remove: `Usage: kinstall remove VERSION [--keep-modules] [--force] [--dry-run] [--root DIR]

Remove VERSION from the boot layout through the same transaction as add (rolled back on failure);
with layout=auto, from every layout that lists it (a kernel installed for both compat and bls
is removed from both). Then the bootloader is updated and <root>/lib/modules/VERSION deleted unless
--keep-modules (renamed aside inside the transaction, so a failure or a crash brings it back).
Files a package manager owns are never deleted: paths listed in <root>/var/db/pkg/*/*/CONTENTS
(portage) or <root>/var/lib/dpkg/info/*.list (dpkg) stay, a modules tree holding any of them stays
whole, and a "leaving PATH: … belong to PACKAGE" line names the owner; removing the package deletes them.
Checked first, before any change: the boot dir, the ESP and /lib/modules stay inside --root, and
the bootloader tool exists. Hooks in /etc/kernel/prerm.d run before the removal (a failure stops
it, exit 5) and in /etc/kernel/postrm.d after it (a failure: exit 7), with VERSION IMAGE.
--dry-run prints what would be removed, one line each: the files, then the modules tree.
Removing the running kernel needs --force.`,
  prune: `Usage: kinstall prune --keep N [--dry-run] [--root DIR]

Remove the oldest installed kernels (by version order) beyond the newest N. The running kernel and
the newest kernel are never removed. All removals are one transaction: if one fails, no kernel is
removed.`,
  verify: `Usage: kinstall verify VERSION [--layout NAME] [--timeout SECONDS] [--json] [--root DIR]

Boot the installed kernel and initramfs of VERSION (as its layout lists them; with --layout NAME,
as that layout installed them) in QEMU: direct kernel boot, no disk, no network, serial console,
panic=-1, at most --timeout seconds (default 90). The verdict is one of: pass (a milestone of a
working init: systemd's basic.target or dracut's initqueue starting, dracut's own init's banner,
another init's first output), init-failed (the init gave up first: systemd's "Failed to mount API
filesystems" or "Freezing execution", emergency mode, dracut's FATAL or shell; the line is named),
kernel-panic, no-initramfs (a panic, and no initramfs is installed for VERSION),
initramfs-unpack-failed (e.g. a compression the kernel was not built with), no-output (e.g. not a
bootable image), timeout (QEMU was stopped at the limit, whatever the console showed); the last
console lines are shown. The target's command line is used without quiet. With --json: {version,
verdict, cause, milestone, lines, seconds}.
It checks the kernel and the initramfs only, not the real root device, the boot loader or the
firmware: that is before the reboot; after it, add --try boots the kernel once and falls back by
itself unless kinstall confirm runs. A UKI-only install cannot be booted directly.
Exit 0 on pass, 8 otherwise, 3 when VERSION is not installed, 4 when qemu-system-x86_64 is missing
(Debian package qemu-system-x86).`,
  recover: `Usage: kinstall recover [--json] [--root DIR]

Before changing anything, every run writes an intent journal to <root>/var/lib/kinstall/journal.json.
A run killed with SIGKILL or cut off by a power loss leaves it behind; recover puts every file back
as it was before that run (or, when the run had already finished its changes, completes it),
removes leftover temporary files, and runs the bootloader step (lilo, grub-mkconfig) again on the
restored files, and puts firmware entries (efistub) and BootOrder back as the journal recorded them.
add, stage, remove, prune, list, verify and installkernel recover first, with a warning.
Prints what it did, or "nothing to recover". Exit 0; 6 if a file could not be restored, or the
journal cannot be used (EJOURNAL: unreadable, an unknown format, or naming a path outside the
root), and the journal is kept; 4 (EINSECURE) when the journal is not root's. Journal paths are
relative to the root, so a run killed under --root /mnt/gentoo is recovered from inside that chroot.`,
  inspect: `Usage: kinstall inspect IMAGE [--json]

Print the kernel version recorded in IMAGE, its format (bzImage, arm64-image, vmlinux, pe, uki),
architecture, whether the firmware can start it (EFI stub) and its size. Exit 3 if IMAGE is not
a kernel.`,
};

export const installkernelHelp = `Usage: installkernel VERSION IMAGE [SYSTEM_MAP] [DIR] [OPTIONS]
       installkernel [VERSION IMAGE [SYSTEM_MAP] [DIR]] --all [--jobs N] [OPTIONS]
       installkernel [OPTIONS]

The interface the kernel's \`make install\` and ebuilds' pkg_postinst call: stage IMAGE
(and SYSTEM_MAP, and the .config beside it) to <root>/lib/modules/VERSION/, then install it
like \`kinstall add\`. Relative paths are taken from the current directory. DIR is the boot
dir (default /boot). A fifth argument is ignored. With no arguments, the running kernel
(under --root, the newest staged one) is reinstalled from the neutral location.

  -a, --all           install every <root>/lib/modules/*/ that has a vmlinuz; continue past
                      failures and exit non-zero if any failed. Positionals are accepted as
                      Gentoo's dist-kernel passes them (VERSION IMAGE SYSTEM_MAP DIR --all):
                      VERSION, IMAGE and SYSTEM_MAP are not used, DIR is still the boot dir
  -j, --jobs N        with --all: up to N initramfs generations at once (default: the cores
                      available). The kernels are still installed one at a time, each in its
                      own transaction; an initramfs is made ahead of its kernel's turn only when
                      no preinst hook and no depmod run before it (--verbose says which wait)

${commonOptions}`;
