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
      'docs/.vitepress/dist/**',
      'docs/.vitepress/cache/**',
      'docs/.vitepress/.temp/**',
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
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
      // noUncheckedIndexedAccess types every `a[i]` as `T | undefined`; in bounds-checked numeric loops (voxels,
      // frames, byte offsets) `a[i]!` is the honest idiom, and the alternatives cost a branch per element.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // `/// <reference path>` is how a package pulls in a local ambient shim (e.g. dcmjs has no types)
      '@typescript-eslint/triple-slash-reference': ['error', { path: 'always', types: 'prefer-import', lib: 'never' }],
      'no-console': 'error', // libraries log through the injected Logger, never console.*
      // msw 3 renamed listen()'s onUnhandledRequest to onUnhandledFrame and ignores the old name without a word: an
      // unhandled request would then only warn and go out to the network instead of failing the test.
      'no-restricted-syntax': [
        'error',
        {
          selector: "Property[key.name='onUnhandledRequest']",
          message: 'msw 3 ignores onUnhandledRequest: use onUnhandledFrame.',
        },
      ],
    },
  },
  {
    // tests, contract suites, test kits and programs (CLIs, benchmarks, scripts, the example server) may print
    files: [
      '**/*.test.ts',
      '**/*.contract.ts',
      '**/testing.ts',
      '**/testing/**',
      'bench/**',
      'scripts/**',
      'examples/**',
      'tools/**',
      'packages/*/scripts/**',
    ],
    rules: { 'no-console': 'off' },
  },
  prettier,
);
