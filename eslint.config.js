// Lint rules: typescript-eslint's recommended set, plus the architecture's import boundaries.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The core knows no plugin and no CLI (docs/architecture.md).
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['**/plugins/**', '**/cli/**'] }],
    },
  },
  {
    // A plugin sees one module of the core, its API (docs/architecture.md), and never the CLI.
    files: ['plugins/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/src/cli/**'], message: 'plugins never import the CLI' },
            {
              regex: '(^|/)src/core/(?!plugin-api\\.js$)',
              message: 'plugins import the core only through src/core/plugin-api.js',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
