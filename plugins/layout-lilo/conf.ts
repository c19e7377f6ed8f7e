// What the lilo layout needs from lilo.conf: its image= and initrd= paths, and the preflight
// problems (missing file, no image=/boot/vmlinuz) that come with an example section to copy.
import path from 'node:path';
import { pluginOptions, type Context, type OptionSchema, quickFs } from '../../src/core/plugin-api.js';

/**
 * `command`: the lilo binary on the host (default /sbin/lilo); under --root it runs as `lilo -r ROOT`.
 * `config`: lilo.conf as the target names it (default /etc/lilo.conf).
 * `testFirst`: run `lilo -t` before the real run (default true).
 */
export const liloSchema = { command: 'string', config: 'string', testFirst: 'boolean' } as const satisfies OptionSchema;

export const liloOptions = (ctx: Context) => pluginOptions(ctx, 'lilo', liloSchema);
export const liloCommand = (ctx: Context) => liloOptions(ctx).command ?? '/sbin/lilo';
export const liloConfig = (ctx: Context) => liloOptions(ctx).config ?? '/etc/lilo.conf';

export interface LiloConf {
  images: string[];
  initrds: string[];
  /** Each image='s label (lilo's default label: the image's file name), by image path. */
  labels: Map<string, string>;
  /** The global default= label, when set. */
  defaultLabel?: string;
}

/** The image=, initrd=, label= and global default= values, comments stripped and quotes removed; undefined when the file is missing. */
export async function readLiloConf(ctx: Context): Promise<LiloConf | undefined> {
  const text = await quickFs.readFile(ctx.paths.under(liloConfig(ctx)), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const conf: LiloConf = { images: [], initrds: [], labels: new Map() };
  for (const raw of text.split('\n')) {
    const match = /^\s*(image|initrd|label|default)\s*=\s*"?([^"#\s]+)"?/.exec(raw.replace(/#.*$/, ''));
    const [key, value] = [match?.[1], match?.[2]];
    if (!value) continue;
    const image = conf.images.at(-1);
    if (key === 'image') {
      conf.images.push(value);
      conf.labels.set(value, path.posix.basename(value));
    } else if (key === 'initrd') conf.initrds.push(value);
    else if (key === 'label' && image) conf.labels.set(image, value);
    else if (key === 'default' && !image) conf.defaultLabel = value;
  }
  return conf;
}

/** The label the map boots by default when lilo runs without -D: default=, else the first image's. */
export const confDefaultLabel = (conf: LiloConf) =>
  conf.defaultLabel ?? (conf.images[0] === undefined ? undefined : conf.labels.get(conf.images[0]));

/** The version-less names lilo.conf boots, as the target names them. */
export function versionlessPaths(ctx: Context) {
  const at = (name: string) => path.posix.join(ctx.settings.bootDir, name);
  return { image: at('vmlinuz'), imageOld: at('vmlinuz.old'), initrd: at('initramfs.img'), initrdOld: at('initramfs.img.old') };
}

/** lilo.conf lines that boot what this layout maintains (whole: with the global part); `optional` because .old is absent at first. */
export function exampleSection(ctx: Context, whole: boolean): string[] {
  const p = versionlessPaths(ctx);
  return [
    ...(whole ? ['boot=/dev/sda', 'prompt', 'timeout=50', 'default=linux'] : []),
    `image=${p.image}`,
    '    label=linux',
    `    initrd=${p.initrd}`,
    '    read-only',
    '    root=/dev/sda2',
    `image=${p.imageOld}`,
    '    label=linux.old',
    `    initrd=${p.initrdOld}`,
    '    optional',
    '    read-only',
    '    root=/dev/sda2',
  ];
}

/** Preflight problems about lilo.conf itself; the example goes on the lines after the problem's first. */
export async function checkLiloConf(ctx: Context, hasInitrd: boolean): Promise<string[]> {
  const file = ctx.paths.under(liloConfig(ctx));
  const conf = await readLiloConf(ctx);
  const example = (whole: boolean) =>
    ` (example below)\n    for example:\n${exampleSection(ctx, whole)
      .map((l) => `      ${l}`)
      .join('\n')}`;
  const p = versionlessPaths(ctx);
  if (!conf) return [`${file} does not exist: create it with boot= and an image= section for ${p.image}${example(true)}`];
  const problems: string[] = [];
  if (!conf.images.includes(p.image)) {
    problems.push(
      `${file} has no image=${p.image}: kinstall keeps ${p.image} pointing at the newest kernel, so lilo must boot it${example(false)}`,
    );
  }
  if (!hasInitrd && conf.initrds.includes(p.initrd)) {
    problems.push(
      `${file} boots initrd=${p.initrd} but this install has no initramfs (use --initramfs dracut, or drop the initrd= line)`,
    );
  }
  return problems;
}
