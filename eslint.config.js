// @ts-check
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

/** Each external system has exactly one adapter folder allowed to import its client library. */
const adapters = [
  { pkg: 'dockerode', folder: 'src/docker/' },
  { pkg: '@kubernetes/client-node', folder: 'src/k8s/' },
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'netstack/', 'oclif.manifest.json'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  ...tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      'no-console': 'error',
    },
  },
  // Later config objects replace a rule rather than merge it, so each scope lists every
  // adapter it may not import.
  ...[undefined, ...adapters.map((a) => a.folder)].map((own) => ({
    files: own ? [`${own}**/*.ts`] : ['**/*.ts'],
    ignores: own ? [] : adapters.map((a) => `${a.folder}**`),
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: adapters
            .filter((a) => a.folder !== own)
            .map(({ pkg, folder }) => ({
              name: pkg,
              message: `Only ${folder} may import ${pkg}: call its adapter.`,
            })),
        },
      ],
    },
  })),
  {
    // Tests, benchmarks and the daemon/agent entry points print to stdout by design.
    files: ['test/**', 'bench/**', 'bin/**', 'src/daemon/main.ts', 'agent/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // client-node's models are classes only in name: the API takes and returns plain objects,
    // and its own examples build them as literals.
    files: ['src/k8s/**/*.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-class-instance-assignment': 'off' },
  },
  { files: ['**/*.js', '**/*.cjs', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['test/fixtures/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: { 'no-console': 'off' },
  },
  {
    // Scripts that run inside containers as plain CommonJS.
    files: ['test/fixtures/**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off', 'no-console': 'off' },
  },
  { files: ['bin/**/*.js', '*.config.js'], languageOptions: { globals: { process: 'readonly' } } },
  prettier,
);
