// `npm run bench`: whole commands as a user waits for them, kinstall beside the tools it replaces
// (systemd's kernel-install and Debian's installkernel, both on this machine), on the real test
// kernel, each tool in its own scratch root (never the host's /boot). Every figure is the median
// of BENCH_RUNS (default 5) whole-process runs; within a run the tools take turns, in a rotating
// order, so a change in the machine's load falls on all of them. Prints one markdown table: the
// medians, the ratio each target is about, and pass/fail. Targets are benchmarks, never tests.
// kinstall's bins run as a user runs them: executed (their shell start, then node), not `node BIN`.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chmodSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const top = path.resolve(import.meta.dirname, '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/**
 * The measures of a fraction of a second (start, add and remove without an initramfs) take three
 * times as many rounds: their medians move by several percent from one run to the next otherwise.
 */
const QUICK_RUNS = RUNS * 3;
const KINSTALL = path.join(top, 'dist/src/cli/kinstall.js');
const INSTALLKERNEL = path.join(top, 'dist/src/cli/installkernel.js');
const kernelDir = execFileSync(path.join(top, 'scripts/fetch-test-kernel.sh'), { encoding: 'utf8' }).trim();
const V = readdirSync(path.join(kernelDir, 'lib/modules'))[0];
const IMAGE = path.join(kernelDir, 'boot', `vmlinuz-${V}`);
const MAP = path.join(kernelDir, 'boot', `System.map-${V}`);
const MACHINE_ID = '0123456789abcdef0123456789abcdef';
const scratch = mkdtempSync(path.join(os.tmpdir(), 'kinstall-bench-'));
// Gone however the run ends (a tool failing stops the benchmark with an exception).
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));
const emptyConfDir = path.join(scratch, 'dracut.conf.d');
mkdirSync(emptyConfDir);
/** dracut as the tests run it: generic, no host config, the base module only. */
const FAST_DRACUT = ['--conf', '/dev/null', '--confdir', emptyConfDir, '-m', 'base', '--add-drivers', 'virtio_blk'];

// The modules as a kernel package leaves them: with their index (a package's postinst runs depmod
// before calling the installer), linked into every root so both tools start from the same state.
const template = path.join(scratch, 'template');
mkdirSync(path.join(template, 'lib/modules'), { recursive: true });
execFileSync('cp', ['-al', path.join(kernelDir, 'lib/modules', V), path.join(template, 'lib/modules/')]);
execFileSync('depmod', ['-a', '-b', template, V]);

let rootCount = 0;
/** A fresh target root: /boot, an ESP with loader/, machine-id, the kernel's modules (hard links, index current); synced. */
function newRoot({ modules = true, esp = true, config = {} } = {}) {
  const root = path.join(scratch, `root-${(rootCount += 1)}`);
  for (const dir of ['boot', ...(esp ? ['efi/loader/entries'] : []), 'etc/kinstall', 'etc/kernel', 'lib/modules'])
    mkdirSync(path.join(root, dir), { recursive: true });
  writeFileSync(path.join(root, 'etc/machine-id'), `${MACHINE_ID}\n`);
  writeFileSync(path.join(root, 'etc/kernel/cmdline'), 'root=UUID=0f3b2a4e-1111-4c6a-9d55-0123456789ab ro\n');
  if (esp) writeFileSync(path.join(root, 'efi/loader/loader.conf'), 'timeout 3\n');
  writeFileSync(path.join(root, 'etc/kinstall/config.json'), JSON.stringify({ dracut: { args: FAST_DRACUT }, ...config }));
  // kernel-install's config root: the BLS layout, which it would otherwise guess from the ESP.
  if (esp) writeFileSync(path.join(root, 'etc/kernel/install.conf'), 'layout=bls\ninitrd_generator=none\n');
  if (modules) execFileSync('cp', ['-al', path.join(template, 'lib/modules', V), path.join(root, 'lib/modules/')]);
  // Untimed: every measured run starts with nothing left to write back from the runs before it (a
  // tool that leaves its copies unsynced would otherwise slow the next one's fsyncs).
  execFileSync('sync');
  return root;
}

/**
 * systemd's kernel-install with the two plugins the target names (50-depmod, 90-loaderentry), on a
 * scratch root: BOOT_ROOT and the config root by its environment variables. 50-depmod runs
 * `depmod -a VERSION` on the host's /lib/modules; the copy here adds `-b ROOT` and nothing else,
 * so it does the same work on the scratch root's modules.
 */
function kernelInstallEnv(root) {
  const depmod = path.join(root, '50-depmod.install');
  writeFileSync(
    depmod,
    `#!/bin/sh\nset -e\n[ "$1" = add ] || exit 0\n[ -d "${root}/lib/modules/$2/kernel" ] || exit 0\nexec depmod -a -b "${root}" "$2"\n`,
  );
  chmodSync(depmod, 0o755);
  return {
    ...process.env,
    BOOT_ROOT: path.join(root, 'efi'),
    KERNEL_INSTALL_CONF_ROOT: path.join(root, 'etc/kernel'),
    KERNEL_INSTALL_MACHINE_ID: MACHINE_ID,
    MACHINE_ID,
    KERNEL_INSTALL_PLUGINS: `${depmod} /usr/lib/kernel/install.d/90-loaderentry.install`,
  };
}

/** Milliseconds of one whole process; a failure stops the benchmark (a fast wrong answer is no answer). */
function timeProcess([file, ...args], env = process.env) {
  const start = performance.now();
  const result = spawnSync(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - start;
  if (result.status !== 0)
    throw new Error(`${[file, ...args].join(' ')} failed (${result.status ?? result.signal}): ${result.stderr.slice(-800)}`);
  return ms;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * Medians of `rounds` (RUNS) rounds; in each round every case runs once, starting with a different
 * case each round. A case is `{ name, prepare?() → context, command(context) → [argv, env] }`; prepare is untimed.
 */
function measure(cases, rounds = RUNS) {
  const times = Object.fromEntries(cases.map((c) => [c.name, []]));
  for (let round = 0; round < rounds; round += 1) {
    for (let i = 0; i < cases.length; i += 1) {
      const c = cases[(round + i) % cases.length];
      const context = c.prepare?.();
      const [argv, env] = c.command(context);
      times[c.name].push(timeProcess(argv, env));
      c.cleanup?.(context);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([name, list]) => [name, median(list)]));
}

/** BENCH_ONLY=start,add,dracut,remove,all,many runs only those measures (default: all). */
const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
const selected = (name) => !only || only.includes(name);

const rows = [];
const ms = (value) => (value === undefined ? '–' : `${Math.round(value)}`);
function row(what, medians, { ratio, target, pass, note = '' }) {
  rows.push({
    what,
    kinstall: ms(medians.kinstall),
    kernelInstall: ms(medians['kernel-install']),
    installkernel: ms(medians.installkernel),
    other: medians.other === undefined ? '–' : `${Math.round(medians.other)} (${medians.otherName})`,
    ratio,
    target,
    pass,
    note,
  });
}
const dropRoot = (root) => rmSync(root, { recursive: true, force: true });
const node = process.execPath;
/**
 * node's own start, as kinstall's bins start it: without NODE_EXTRA_CA_CERTS (their shell start
 * takes it out; Node 20 reads the CA bundle it names at every start, for TLS kinstall never uses).
 */
const bareNodeEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_EXTRA_CA_CERTS'));

// 1. start: --version and --help against node's own start.
if (selected('start')) {
  const m = measure(
    [
      { name: 'node', command: () => [[node, '-e', '0'], bareNodeEnv] },
      { name: 'version', command: () => [[KINSTALL, '--version']] },
      { name: 'help', command: () => [[KINSTALL, '--help']] },
    ],
    QUICK_RUNS,
  );
  for (const which of ['version', 'help']) {
    const ratio = m[which] / m.node;
    row(
      `start: kinstall --${which}`,
      { kinstall: m[which], other: m.node, otherName: 'node -e 0' },
      {
        ratio: `${ratio.toFixed(2)}× node -e 0`,
        target: '≤ 1.6×',
        pass: ratio <= 1.6,
        note: which === 'version' ? 'node -e 0 runs without NODE_EXTRA_CA_CERTS, as the bins start node' : '',
      },
    );
  }
}

// 2. add without an initramfs, BLS layout: kinstall vs kernel-install (50-depmod + 90-loaderentry) vs Debian's copy.
if (selected('add')) {
  const m = measure(
    [
      {
        name: 'kinstall',
        prepare: () => newRoot(),
        cleanup: dropRoot,
        command: (r) => [[KINSTALL, 'add', '--root', r, '--layout', 'bls', '--esp', '/efi', '--initramfs', 'none', V, IMAGE]],
      },
      {
        name: 'kernel-install',
        prepare: () => newRoot(),
        cleanup: dropRoot,
        command: (r) => [['kernel-install', 'add', V, IMAGE], kernelInstallEnv(r)],
      },
      {
        name: 'installkernel',
        prepare: () => newRoot(),
        cleanup: dropRoot,
        command: (r) => [['/usr/sbin/installkernel', V, IMAGE, MAP, path.join(r, 'boot')]],
      },
    ],
    QUICK_RUNS,
  );
  const ratio = m.kinstall / m['kernel-install'];
  row('add, BLS, no initramfs', m, {
    ratio: `${ratio.toFixed(2)}× kernel-install`,
    target: '≤ 1.0×',
    pass: ratio <= 1.0,
    note: 'installkernel (Debian) only copies: shown, no target',
  });
}

// 3. add with dracut (the tests' fast config): kinstall's compressor vs dracut's defaults as Gentoo's
//    installkernel runs it (dracut --kver, then the copy).
if (selected('dracut')) {
  const gentooLike = (r) => {
    const script = `set -e\ndracut --force --kver "$1" --kmoddir "$2" --no-hostonly ${FAST_DRACUT.join(' ')} "$3/boot/initramfs-$1.img"\n/usr/sbin/installkernel "$1" "$4" "$5" "$3/boot"\n`;
    return [['sh', '-c', script, 'sh', V, path.join(r, 'lib/modules', V), r, IMAGE, MAP]];
  };
  const m = measure([
    {
      name: 'kinstall',
      prepare: () => newRoot(),
      cleanup: dropRoot,
      command: (r) => [[KINSTALL, 'add', '--root', r, '--layout', 'bls', '--esp', '/efi', '--initramfs', 'dracut', V, IMAGE]],
    },
    { name: 'installkernel', prepare: () => newRoot(), cleanup: dropRoot, command: gentooLike },
  ]);
  const ratio = m.kinstall / m.installkernel;
  row('add, generic dracut initramfs', m, {
    ratio: `${ratio.toFixed(2)}× dracut defaults + installkernel`,
    target: '≤ 0.5×',
    pass: ratio <= 0.5,
    note: "installkernel column: dracut's defaults, then Debian's installkernel (as Gentoo's runs dracut)",
  });
}

// 4. remove, BLS: kinstall vs kernel-install (Debian's installkernel has no remove).
if (selected('remove')) {
  const installed = (tool) => () => {
    const r = newRoot();
    if (tool === 'kinstall')
      timeProcess([KINSTALL, 'add', '--root', r, '--layout', 'bls', '--esp', '/efi', '--initramfs', 'none', V, IMAGE]);
    else timeProcess(['kernel-install', 'add', V, IMAGE], kernelInstallEnv(r));
    return r;
  };
  const m = measure(
    [
      {
        name: 'kinstall',
        prepare: installed('kinstall'),
        cleanup: dropRoot,
        command: (r) => [[KINSTALL, 'remove', '--root', r, '--layout', 'bls', '--esp', '/efi', V]],
      },
      {
        name: 'kernel-install',
        prepare: installed('kernel-install'),
        cleanup: dropRoot,
        command: (r) => [['kernel-install', 'remove', V], kernelInstallEnv(r)],
      },
    ],
    QUICK_RUNS,
  );
  const ratio = m.kinstall / m['kernel-install'];
  row('remove, BLS', m, {
    ratio: `${ratio.toFixed(2)}× kernel-install`,
    target: '–',
    pass: '–',
    note: 'kinstall also deletes the modules tree',
  });
}

// 5. installkernel --all with 4 staged kernels (fast dracut): in parallel vs one after another.
if (selected('all')) {
  const staged = () => {
    const r = newRoot({ modules: false, esp: false });
    for (let i = 1; i <= 4; i += 1) {
      const version = `${V}-bench${i}`;
      const dir = path.join(r, 'lib/modules', version);
      // cp -a, not cpSync: cpSync's preserveTimestamps leaves the directories newer than the index,
      // so depmod would run again for every kernel, unlike after a package's own depmod.
      execFileSync('cp', ['-a', path.join(template, 'lib/modules', V), dir]);
      copyFileSync(IMAGE, path.join(dir, 'vmlinuz'));
      copyFileSync(MAP, path.join(dir, 'System.map'));
      copyFileSync(path.join(kernelDir, 'boot', `config-${V}`), path.join(dir, 'config'));
    }
    return r;
  };
  // --force: the four copies carry V's image under other versions (EVERSIONMISMATCH otherwise).
  const allArgs = (r) => [INSTALLKERNEL, '--all', '--force', '--root', r, '--layout', 'compat', '--initramfs', 'dracut'];
  const supportsJobs = spawnSync(node, [INSTALLKERNEL, '--help'], { encoding: 'utf8' }).stdout.includes('--jobs');
  if (supportsJobs) {
    const m = measure([
      { name: 'kinstall', prepare: staged, cleanup: dropRoot, command: (r) => [allArgs(r)] },
      { name: 'other', prepare: staged, cleanup: dropRoot, command: (r) => [[...allArgs(r), '--jobs', '1']] },
    ]);
    const speedup = m.other / m.kinstall;
    row(
      'installkernel --all, 4 kernels',
      { ...m, otherName: '--jobs 1' },
      {
        ratio: `${speedup.toFixed(2)}× faster than --jobs 1`,
        target: '≥ 1.6×',
        pass: speedup >= 1.6,
        note: `${os.availableParallelism()} cores`,
      },
    );
  } else {
    row(
      'installkernel --all, 4 kernels',
      {},
      { ratio: '–', target: '≥ 1.6×', pass: 'not built', note: 'this build has no parallel --all (--jobs)' },
    );
  }
}

// 6. list and prune --keep 3 with 100 installed kernels (compat files, modules dirs).
if (selected('many')) {
  const hundred = () => {
    const r = newRoot({ modules: false, esp: false });
    for (let i = 1; i <= 100; i += 1) {
      const version = `6.1.${i}-bench`;
      for (const [name, body] of [
        [`vmlinuz-${version}`, 'k'],
        [`System.map-${version}`, 'm'],
        [`config-${version}`, 'c'],
        [`initramfs-${version}.img`, 'i'],
      ])
        writeFileSync(path.join(r, 'boot', name), body);
      mkdirSync(path.join(r, 'lib/modules', version, 'kernel'), { recursive: true });
      writeFileSync(path.join(r, 'lib/modules', version, 'modules.order'), '');
    }
    return r;
  };
  const m = measure([
    { name: 'list', prepare: hundred, cleanup: dropRoot, command: (r) => [[KINSTALL, 'list', '--root', r]] },
    {
      name: 'prune',
      prepare: hundred,
      cleanup: dropRoot,
      command: (r) => [[KINSTALL, 'prune', '--keep', '3', '--root', r]],
    },
  ]);
  const listed = spawnSync(node, [KINSTALL, 'list', '--root', hundred()], { encoding: 'utf8' }).stdout.trim().split('\n').length;
  if (listed !== 100) throw new Error(`the 100-kernel root lists ${listed} kernels`);
  row('list, 100 kernels', { kinstall: m.list }, { ratio: `${Math.round(m.list)} ms`, target: '< 1000 ms', pass: m.list < 1000 });
  row(
    'prune --keep 3, 100 kernels',
    { kinstall: m.prune },
    {
      ratio: `${Math.round(m.prune)} ms`,
      target: '< 1000 ms',
      pass: m.prune < 1000,
      note: '97 removals in one transaction, with the prerm/postrm hooks that apply to each',
    },
  );
}

const load = os.loadavg()[0].toFixed(1);
console.log(
  `kinstall benchmark: ${RUNS} runs per figure, ${QUICK_RUNS} for start, add and remove (medians, ms), ${os.availableParallelism()} cores, load ${load}, kernel ${V}\n`,
);
console.log('| measure | kinstall | kernel-install | installkernel | other | ratio | target | pass |');
console.log('|---|---:|---:|---:|---:|---|---|---|');
for (const r of rows) {
  const pass = typeof r.pass === 'boolean' ? (r.pass ? 'pass' : 'FAIL') : r.pass;
  console.log(
    `| ${r.what} | ${r.kinstall} | ${r.kernelInstall} | ${r.installkernel} | ${r.other} | ${r.ratio} | ${r.target} | ${pass} |`,
  );
}
const notes = rows.filter((r) => r.note).map((r) => `- ${r.what}: ${r.note}`);
if (notes.length) console.log(`\n${notes.join('\n')}`);
process.exitCode = rows.every((r) => r.pass !== false) ? 0 : 1;
