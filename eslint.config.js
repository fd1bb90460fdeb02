// ESLint flat config: typed rules for the TypeScript sources and tests.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const FOLDERS = 'model|config|store|engine|operations|http|cli|webhooks|cluster|metrics|net|clock|services';

export default tseslint.config(
  {
    ignores: ['**/dist/**', '**/node_modules/**', '**/data/**', 'bench/**', 'examples/data/**', '**/.tmp/**', 'eslint.config.js'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['packages/*/src/**/*.ts', 'packages/*/test/**/*.ts', 'examples/**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after'] }],
        },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // `import { type A }` stays a runtime `import {} from` under verbatimModuleSyntax; write `import type { A }`
      // so the import-cycle check (.dependency-cruiser.mjs) may leave type-only imports out.
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['packages/server/src/**/*.ts'],
    rules: {
      // Each folder is used through its index.ts only (STYLE.md point 2).
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: `^(\\.\\./)+(${FOLDERS})/(?!index\\.js$)`, message: 'Import another folder through its index.js.' }] },
      ],
    },
  },
);
