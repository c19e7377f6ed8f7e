// Reader for the shell-style key=value files shared with Gentoo's installkernel and systemd's
// kernel-install: /usr/lib/kernel/install.conf, /etc/kernel/install.conf, install.conf.d/*.conf.
import { readFile, readdir } from './quick-fs.js';
import path from 'node:path';

export interface ConfValues {
  values: Record<string, string>;
  problems: string[];
}

export function parseInstallConf(text: string, file: string): ConfValues {
  const values: Record<string, string> = {};
  const problems: string[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) {
      problems.push(`${file}:${index + 1}: expected KEY=VALUE, found "${line}"`);
      return;
    }
    let value = match[2] ?? '';
    const quoted = /^(["'])(.*)\1$/.exec(value);
    if (quoted) value = quoted[2] ?? '';
    else value = value.replace(/\s+#.*$/, '');
    values[match[1] ?? ''] = value;
  });
  return { values, problems };
}

async function readIfPresent(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw error;
  });
}

/** The install.conf chain in precedence order, later files overriding only the keys they set. */
export async function readInstallConfChain(under: (p: string) => string): Promise<ConfValues & { files: string[] }> {
  const dropInDir = under('/etc/kernel/install.conf.d');
  const dropIns = (await readdir(dropInDir).catch(() => [] as string[]))
    .filter((name) => name.endsWith('.conf'))
    .sort()
    .map((name) => path.join(dropInDir, name));
  const files = [under('/usr/lib/kernel/install.conf'), under('/etc/kernel/install.conf'), ...dropIns];
  const merged: ConfValues & { files: string[] } = { values: {}, problems: [], files: [] };
  for (const file of files) {
    const text = await readIfPresent(file);
    if (text === undefined) continue;
    const parsed = parseInstallConf(text, file);
    Object.assign(merged.values, parsed.values);
    merged.problems.push(...parsed.problems);
    merged.files.push(file);
  }
  return merged;
}
