// @ts-check
// ESLint flat config. The layering rules of STYLE.md live here so they hold without anyone
// remembering them: dependencies between src/ modules point down only (DESIGN.md), only
// src/hsm touches pkcs11js, only src/server and src/agent touch grpc-js.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Modules from top to bottom; each may import only those below it (and core). */
export const LAYERS = [
  'cli',
  'server',
  'agent',
  'ceremony',
  'pki',
  'tokens',
  'policy',
  'audit',
  'store',
  'hsm',
  'config',
  'core',
];

/** Modules a layer must never import although they sit below it. */
const EXTRA_FORBIDDEN = {
  // hsm signs bytes; it knows nothing of X.509 or tokens.
  hsm: ['pki', 'tokens', 'policy', 'audit', 'store'],
  // pki and tokens sign through their own Signer interface, never through hsm.
  pki: ['hsm', 'tokens', 'store', 'audit', 'policy'],
  tokens: ['hsm', 'pki', 'store', 'audit', 'policy'],
  config: ['hsm'],
};

const PKCS11 = { name: 'pkcs11js', message: 'Only src/hsm talks PKCS#11 (STYLE.md layering).' };
const GRPC = [
  { name: '@grpc/grpc-js', message: 'Only src/server and src/agent import grpc-js (STYLE.md layering).' },
  { name: '@grpc/proto-loader', message: 'Only src/server and src/agent load protos (STYLE.md layering).' },
];

/**
 * @param {string} layer
 * @returns {import('eslint').Linter.Config}
 */
function layerConfig(layer) {
  const index = LAYERS.indexOf(layer);
  const above = LAYERS.slice(0, index);
  // A Set: EXTRA_FORBIDDEN may repeat a layer that is already above, and ESLint rejects
  // duplicate pattern entries in a rule's options.
  const forbidden = [...new Set([...above, ...(EXTRA_FORBIDDEN[layer] ?? [])])].filter((m) => m !== layer);
  const paths = [];
  if (layer !== 'hsm') paths.push(PKCS11);
  if (layer !== 'server' && layer !== 'agent') paths.push(...GRPC);
  const patterns = forbidden.map((m) => ({
    group: [`**/${m}`, `**/${m}/**`, `../${m}/**`, `../../${m}/**`],
    message: `src/${layer} must not import src/${m}: dependencies point down only (DESIGN.md module map).`,
  }));
  if (layer === 'core') {
    patterns.push({ group: ['../**'], message: 'src/core imports nothing from the project.' });
  }
  // no-restricted-imports does not see `import('…')`: the same rules for dynamic imports.
  const syntax = paths.map((path) => ({
    selector: `ImportExpression[source.value='${path.name}']`,
    message: `dynamic import of ${path.name}: ${path.message}`,
  }));
  if (forbidden.length > 0) {
    syntax.push({
      selector: `ImportExpression[source.value=/^([.][.][/])+(${forbidden.join('|')})([/]|$)/]`,
      message: `src/${layer} must not import a module above it, dynamically or not: dependencies point down only (DESIGN.md module map).`,
    });
  }
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', { paths, patterns }],
      'no-restricted-syntax': ['error', ...syntax],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.js', 'bin/*.js', 'test/fixtures/lint/src/*/*.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-extraneous-class': 'off',
    },
  },
  ...LAYERS.map(layerConfig),
  {
    files: ['test/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      // chai's `expect(x).to.be.true` style reads as an unused expression.
      '@typescript-eslint/no-unused-expressions': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['bin/*.js'],
    languageOptions: { globals: { process: 'readonly', URL: 'readonly', console: 'readonly' } },
  },
  // Fixtures that break the layering on purpose; test/unit/lint proves the rules fire on them.
  { ignores: ['test/fixtures/lint/**'] },
);
