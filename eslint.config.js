// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import globals from 'globals';

export default tseslint.config(
  {
    // generated output, vendored trees and virtual environments (tools/*/.venv holds Python packages with JS in them)
    ignores: [
      '**/dist/**',
      '**/coverage/**',
      'docs/api/**',
      '**/node_modules/**',
      '.tools/**',
      '**/.venv/**',
      '**/target/**',
      '**/*.cjs',
      '**/__fixtures__/**',
      'examples/dashboard/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['**/*.test.ts', 'bench/**', 'scripts/**', 'examples/**', 'tools/**'],
    rules: { 'no-console': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  prettier,
);
