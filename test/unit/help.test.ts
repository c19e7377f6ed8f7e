// The help text, README and man page name every built-in layout and every plugin option, so
// documentation cannot fall behind the registry.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { builtinPlugins } from '../../plugins/index.js';
import { kinstallHelp } from '../../src/cli/help.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const man = readFileSync(new URL('../../man/kinstall.8', import.meta.url), 'utf8');
const { layouts, generators } = builtinPlugins();

describe('documentation in step with the registry', () => {
  it.each(layouts.map((l) => [l.name, l]))('layout %s is in --help, the README and the man page', (name, layout) => {
    for (const text of [kinstallHelp, readme, man]) expect(text).toContain(name);
    for (const alias of layout.aliases ?? []) expect(kinstallHelp).toContain(alias);
  });

  it.each([...layouts, ...generators].filter((p) => p.optionSchema).map((p) => [p.name, p.optionSchema ?? {}]))(
    'every option of %s is in the README config reference',
    (name, schema) => {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` | object |`));
      expect(row, `README has no config row for ${name}`).toBeDefined();
      for (const key of Object.keys(schema)) expect(row).toContain(`\`${key}\``);
    },
  );
});
