// Under a --root other than /, the target's hooks run inside the target: each in its own private
// mount namespace (unshare -m) with /proc, /sys and /dev mounted, then chroot. The namespace ends
// with the hook, however kinstall ends, so no mount outlives the run. Hooks outside the root
// (kinstall's shipped hooks.d) run on the host. Before anything changes, preflight checks that the
// target can start every hook it would run (its interpreter, its architecture).
import { open } from 'node:fs/promises';
import { lstat, readlink } from '../../quick-fs.js';
import path from 'node:path';
import type { Context } from '../../context.js';
import { KinstallError } from '../../errors.js';
import { isDirectory, isFile } from '../../fs.js';
import type { Hook } from './discover.js';
import type { HookRunner } from './run.js';

/** Whether hooks found under the root are the target's and run inside it. */
export const runsInTarget = (ctx: Context): boolean => ctx.paths.root !== '/' && ctx.settings.targetHooks === 'run';

/** A hook the target ships (found under the root), as opposed to kinstall's own. */
export const isTargetHook = (ctx: Context, hook: { path: string }): boolean =>
  ctx.paths.root !== '/' && hook.path.startsWith(`${ctx.paths.root}/`);

/** The directories the namespace mounts over, as the target names them. */
const MOUNTED = ['/proc', '/sys', '/dev'];

// $1 is the root; the rest is the hook (as the target names it) and its arguments. A fresh proc
// for the target's processes, the host's /sys and /dev (with /dev/pts, /dev/shm) bound in.
const ENTER_TARGET = [
  'set -e',
  'root=$1; shift',
  'mount -t proc proc "$root/proc"',
  'mount --rbind /sys "$root/sys"',
  'mount --rbind /dev "$root/dev"',
  'exec chroot "$root" "$@"',
].join('\n');

/** Runs the target's hooks inside it, with the paths the target sees; other hooks on the host. */
export function targetRunner(ctx: Context): HookRunner {
  const inside = (hook: Hook) => isTargetHook(ctx, hook);
  return {
    view: (hook) => (inside(hook) ? (hostPath) => ctx.paths.inTarget(hostPath) : (hostPath) => hostPath),
    exec: (hook, args, env) => {
      const options = { env, explicitEnv: true, reject: false, streamOutput: true, cwd: '/' };
      if (!inside(hook)) return ctx.exec.run(hook.path, args, options);
      const argv = [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        ENTER_TARGET,
        'kinstall-hook',
        ctx.paths.root,
        ctx.paths.inTarget(hook.path),
        ...args,
      ];
      return ctx.exec.run('unshare', argv, options);
    },
  };
}

/**
 * A system path of the target resolved on the host, links followed as the target would follow
 * them (an absolute link stays inside the root); undefined when it does not resolve.
 */
export async function resolveInTarget(root: string, systemPath: string, hops = 0): Promise<string | undefined> {
  let resolved = root;
  const parts = systemPath.split('/').filter((p) => p && p !== '.');
  for (const [index, part] of parts.entries()) {
    const next = part === '..' ? (resolved === root ? root : path.dirname(resolved)) : path.join(resolved, part);
    const info = await lstat(next).catch(() => undefined);
    if (!info) return undefined;
    if (!info.isSymbolicLink()) {
      resolved = next;
      continue;
    }
    if (hops > 40) return undefined;
    const target = await readlink(next);
    const base = path.isAbsolute(target) ? target : path.join(targetName(resolved, root), target);
    return resolveInTarget(root, path.join(base, ...parts.slice(index + 1)), hops + 1);
  }
  return resolved;
}

/** The target's name of a host path under the root. */
const targetName = (hostPath: string, root: string) => `/${path.relative(root, hostPath)}`;

/** ELF e_machine values the host runs natively, by Node's process.arch. */
const NATIVE_MACHINES: Record<string, number[]> = {
  x64: [62, 3],
  ia32: [3],
  arm64: [183, 40],
  arm: [40],
  riscv64: [243],
  ppc64: [21],
  s390x: [22],
  loong64: [258],
};

async function readHead(file: string, length: number, position = 0): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** An ELF file's program interpreter (PT_INTERP), e.g. /lib64/ld-linux-x86-64.so.2, if it has one. */
async function elfInterpreter(file: string, head: Buffer): Promise<string | undefined> {
  const is64 = head[4] === 2;
  const le = head[5] === 1;
  const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const word = (b: Buffer, o: number) => (is64 ? Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o)) : u32(b, o));
  const phoff = word(head, is64 ? 32 : 28);
  const entsize = u16(head, is64 ? 54 : 42);
  const count = u16(head, is64 ? 56 : 44);
  for (let i = 0; i < Math.min(count, 64); i += 1) {
    const ph = await readHead(file, entsize, phoff + i * entsize);
    if (ph.length < entsize || u32(ph, 0) !== 3) continue;
    const bytes = await readHead(file, word(ph, is64 ? 32 : 16), word(ph, is64 ? 8 : 4));
    return bytes.toString('latin1').replace(/\0.*$/s, '');
  }
  return undefined;
}

/** Why the target cannot start this executable (as the target names it), or undefined. */
async function whyNotRunnable(root: string, systemPath: string, depth = 0): Promise<string | undefined> {
  const file = await resolveInTarget(root, systemPath);
  if (!file || !(await isFile(file))) return `${systemPath} does not exist in the target`;
  const head = await readHead(file, 64);
  if (head.subarray(0, 2).toString('latin1') === '#!') {
    const line = (await readHead(file, 256)).toString('latin1').split('\n')[0] ?? '';
    const interpreter = line.slice(2).trim().split(/\s+/)[0] ?? '';
    if (depth > 0 || !interpreter.startsWith('/')) return `${systemPath} names no interpreter the target has (${line})`;
    const why = await whyNotRunnable(root, interpreter, depth + 1);
    return why ? `its interpreter: ${why}` : undefined;
  }
  if (head.subarray(0, 4).toString('latin1') !== '\x7fELF') return undefined; // left to the kernel (binfmt_misc), as for any file
  const machine = head[5] === 1 ? head.readUInt16LE(18) : head.readUInt16BE(18);
  if (!(NATIVE_MACHINES[process.arch] ?? []).includes(machine))
    return `${systemPath} is built for another architecture (ELF machine ${machine}) than this host (${process.arch})`;
  const loader = await elfInterpreter(file, head);
  if (loader && !(await resolveInTarget(root, loader))) return `${systemPath} needs ${loader}, which the target does not have`;
  return undefined;
}

/**
 * Preflight: every target hook that would run can start inside the target, and the target has
 * /proc, /sys and /dev to mount and the staging area inside it. ETARGETHOOKS names the hooks.
 */
export async function checkTargetHooks(ctx: Context, hooks: Hook[], stagingArea: string): Promise<void> {
  if (!runsInTarget(ctx)) return;
  const targets = [...new Map(hooks.filter((h) => isTargetHook(ctx, h)).map((h) => [h.path, h])).values()];
  if (targets.length === 0) return;
  const details: string[] = [];
  const named: string[] = [];
  for (const hook of targets) {
    const why = await whyNotRunnable(ctx.paths.root, ctx.paths.inTarget(hook.path));
    if (why) {
      named.push(ctx.paths.inTarget(hook.path));
      details.push(`${ctx.paths.inTarget(hook.path)}: ${why}`);
    }
  }
  for (const dir of MOUNTED) {
    const at = await resolveInTarget(ctx.paths.root, dir);
    if (!at || !(await isDirectory(at)))
      details.push(`the target has no ${dir} directory to mount ${dir} on (create it: mkdir ${ctx.paths.under(dir)})`);
  }
  if (!stagingArea.startsWith(`${ctx.paths.root}/`))
    details.push(`the target has no /var/tmp or /tmp directory for the staging area the hooks share`);
  if (details.length === 0) return;
  const hooksNamed = named.length > 0 ? named.join(', ') : targets.map((h) => ctx.paths.inTarget(h.path)).join(', ');
  throw new KinstallError('ETARGETHOOKS', { root: ctx.paths.root, hooks: hooksNamed }, [
    ...details,
    "the target's hooks run inside it (chroot) under --root; kinstall's own hooks.d runs on the host",
  ]);
}
