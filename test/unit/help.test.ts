// The help text, README and man page name every built-in layout and every plugin option, so
// documentation cannot fall behind the registry.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { builtinPlugins } from '../../plugins/index.js';
import { commandHelp, kinstallHelp } from '../../src/cli/help.js';
import { verbs } from '../../src/cli/run.js';
import { ExitCode } from '../../src/core/errors.js';

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

describe('documentation in step with the commands and exit codes', () => {
  it.each(verbs.filter((v) => v !== 'help'))('command %s is in --help, its own help, the README and the man page', (verb) => {
    expect(kinstallHelp).toMatch(new RegExp(`^  ${verb}\\b`, 'm'));
    expect(commandHelp[verb] ?? '').toContain(`Usage: kinstall ${verb}`);
    expect(readme).toMatch(new RegExp(`^\\| \`${verb}\\b`, 'm'));
    expect(man).toMatch(new RegExp(`^\\.B kinstall ${verb}\\b|\\[\\\\fB${verb}\\\\fR\\]`, 'm'));
  });

  it.each(Object.entries(ExitCode))('exit code %s (%i) is in the README table, --help and the man page', (_name, code) => {
    expect(readme).toMatch(new RegExp(`^\\| ${code} \\|`, 'm'));
    expect(kinstallHelp).toMatch(new RegExp(`\\b${code} [a-z]`));
    expect(man.split('.SH EXIT STATUS')[1]).toMatch(new RegExp(`\\b${code} [a-z]`));
  });

  it('every error code whose exit is not the obvious one is named in the README', () => {
    for (const code of [
      'ELOCKED',
      'EINSECURE',
      'ENOQEMU',
      'EINTERRUPTED',
      'EVERIFY',
      'EJOURNAL',
      'EPRUNE',
      'EPARTIAL',
      'EPOSTINST',
      'EPOSTRM',
    ])
      expect(readme).toContain(code);
  });
});
