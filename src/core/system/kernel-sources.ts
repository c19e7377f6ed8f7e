// Which kernel an install is about: the given image (with the System.map and .config that belong
// with it), or the one staged in the neutral location; its version checked against the image.
import path from 'node:path';
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { firstFile, isFile } from '../fs.js';
import { inspectKernelImage } from './kernel-image.js';
import { argumentPath, resolveInRoot } from '../paths.js';
import { NEUTRAL_NAMES, type KernelSources } from './neutral-location.js';
import type { KernelImageInfo } from '../types.js';
import { checkVersionString, newestStagedVersion } from './versions.js';

export interface KernelRequest {
  version?: string;
  image?: string;
  systemMap?: string;
}

export interface LocatedKernel {
  version: string;
  image: string;
  info: KernelImageInfo;
  /** Files to put into the neutral location; absent when the kernel is there already. */
  sources?: KernelSources;
}

/**
 * System.map and .config that belong with an image: given, beside the System.map (make install),
 * Debian-style beside the image, or at the top of a kbuild tree holding arch/x86/boot/bzImage.
 */
async function findCompanions(version: string, image: string, input: KernelRequest): Promise<KernelSources> {
  const imageDir = path.dirname(image);
  const buildTop = path.resolve(imageDir, '../../..');
  const systemMap =
    input.systemMap ??
    (await firstFile([
      path.join(imageDir, `System.map-${version}`),
      path.join(imageDir, 'System.map'),
      path.join(buildTop, 'System.map'),
    ]));
  const config = await firstFile([
    ...(systemMap ? [path.join(path.dirname(systemMap), '.config')] : []),
    path.join(imageDir, `config-${version}`),
    path.join(imageDir, '.config'),
    path.join(buildTop, '.config'),
  ]);
  return { version, image, systemMap, config };
}

/**
 * IMAGE and SYSTEM_MAP under --root (paths.ts's rule), both checked before anything runs: a
 * System.map that is not there is bad input, not a failure half-way through the install.
 */
async function locateArguments(ctx: Context, input: KernelRequest): Promise<KernelRequest> {
  const image = input.image === undefined ? undefined : await argumentPath(ctx, input.image, 'ENOIMAGE');
  const systemMap = input.systemMap === undefined ? undefined : await argumentPath(ctx, input.systemMap, 'ENOSYSTEMMAP');
  if (systemMap !== undefined && !(await isFile(systemMap))) {
    throw new KinstallError('ENOSYSTEMMAP', { path: systemMap }, [
      'SYSTEM_MAP must be a regular file (the System.map of the build)',
    ]);
  }
  return { ...input, image, systemMap };
}

export async function locateKernel(ctx: Context, given: KernelRequest): Promise<LocatedKernel> {
  const input = await locateArguments(ctx, given);
  let version = input.version;
  let image = input.image;
  if (!image) {
    version ??= ctx.isHostRoot ? ctx.runningRelease : await newestStagedVersion(ctx);
    checkVersionString(version);
    image = await resolveInRoot(ctx, path.join(ctx.paths.moduleDir(version), NEUTRAL_NAMES.image));
    if (!(await isFile(image))) throw new KinstallError('ENOSTAGED', { version, path: image });
  }
  const info = await inspectKernelImage(image);
  if (info.format === 'vmlinux' && (info.arch === 'x86' || info.arch === 'x86_64')) {
    throw new KinstallError('ENOTKERNEL', {
      path: image,
      why: 'an x86 ELF vmlinux cannot be booted; install arch/x86/boot/bzImage',
    });
  }
  if (version === undefined) {
    if (!info.version) throw new KinstallError('ENOVERSION', { why: `${image} records no version; give VERSION` });
    version = info.version;
  }
  checkVersionString(version);
  if (info.version && info.version !== version && !ctx.request.force) {
    throw new KinstallError('EVERSIONMISMATCH', { version, found: info.version }, [`image: ${image}`]);
  }
  const sources = input.image ? await findCompanions(version, image, input) : undefined;
  return { version, image, info, sources };
}
