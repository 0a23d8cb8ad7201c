/**
 * Proves the layering rules of eslint.config.js fire (STYLE.md: dependencies point down only,
 * only src/hsm imports pkcs11js, only src/server and src/agent import grpc-js). The fixtures under
 * test/fixtures/lint/src/<layer>/ break the rules on purpose; each is linted as if it lived in
 * src/<layer>/, with the project's own config.
 */
import { expect } from 'chai';
import { ESLint, type Linter } from 'eslint';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import tseslint from 'typescript-eslint';

const repoRoot = join(import.meta.dirname, '..', '..', '..');
const fixturesRoot = join(repoRoot, 'test', 'fixtures', 'lint', 'src');

/** The fixture files are not in the TS project, so lint them without type information. */
const withoutTypes: Linter.Config[] = [
  {
    files: ['src/**/*.ts'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { parserOptions: { projectService: false } },
  },
];

/** Lints test/fixtures/lint/src/<fixture> as if it were src/<fixture>. */
async function lintAsIfIn(eslint: ESLint, fixture: string): Promise<Linter.LintMessage[]> {
  const text = readFileSync(join(fixturesRoot, fixture), 'utf8');
  // A name that no real source file has, so the result cannot depend on one.
  const filePath = join(repoRoot, 'src', fixture.replace(basename(fixture), `__lint-fixture__${basename(fixture)}`));
  const [result] = await eslint.lintText(text, { filePath });
  if (result === undefined) expect.fail(`no lint result for ${fixture}`);
  const fatal = result.messages.filter((m) => m.fatal === true);
  expect(fatal, `${fixture} must parse`).to.deep.equal([]);
  return result.messages;
}

const LAYERING = /STYLE\.md layering|dependencies point down only|imports nothing from the project/;

describe('lint/layering (eslint.config.js no-restricted-imports)', function () {
  // Loading typescript-eslint and the config takes a moment on a cold cache.
  this.timeout(30_000);
  let eslint: ESLint;

  before(() => {
    eslint = new ESLint({ cwd: repoRoot, overrideConfig: withoutTypes });
  });

  const violations: [string, string, string, RegExp][] = [
    ['pki/imports-pkcs11.ts', 'src/pki imports pkcs11js', 'pkcs11js', /Only src\/hsm talks PKCS#11/],
    ['pki/imports-grpc.ts', 'src/pki imports @grpc/grpc-js', '@grpc/grpc-js', /Only src\/server and src\/agent/],
    ['hsm/imports-pki.ts', 'src/hsm imports ../pki/issuer.js', '../pki/issuer.js', /src\/hsm must not import src\/pki/],
    [
      'core/imports-config.ts',
      'src/core imports ../config/index.js',
      '../config/index.js',
      /src\/core must not import src\/config|src\/core imports nothing/,
    ],
  ];

  for (const [fixture, name, specifier, reason] of violations) {
    it(`fires when ${name}`, async () => {
      const messages = await lintAsIfIn(eslint, fixture);
      const restricted = messages.filter((m) => m.ruleId === 'no-restricted-imports');
      expect(restricted, JSON.stringify(messages, null, 2)).to.not.be.empty;
      for (const message of restricted) {
        expect(message.severity).to.equal(2);
        expect(message.message).to.include(`'${specifier}'`).and.match(LAYERING);
      }
      expect(restricted.some((m) => reason.test(m.message)), 'the specific reason').to.equal(true);
    });
  }

  it('fires on dynamic imports too: import(\'pkcs11js\') and import(\'../hsm/index.js\') in src/pki', async () => {
    const messages = await lintAsIfIn(eslint, 'pki/imports-dynamically.ts');
    const restricted = messages.filter((m) => m.ruleId === 'no-restricted-syntax');
    expect(restricted.map((m) => m.message), JSON.stringify(messages, null, 2)).to.have.length(2);
    expect(restricted.some((m) => /dynamic import of pkcs11js: Only src\/hsm talks PKCS#11/.test(m.message))).to.equal(true);
    expect(restricted.some((m) => /src\/pki must not import a module above it/.test(m.message))).to.equal(true);
  });

  it('passes src/hsm importing pkcs11js and ../core/index.js', async () => {
    const messages = await lintAsIfIn(eslint, 'hsm/clean.ts');
    expect(messages.filter((m) => m.ruleId === 'no-restricted-imports')).to.deep.equal([]);
  });

  it('the same pkcs11js import is an error in src/pki but not in src/hsm', async () => {
    const text = readFileSync(join(fixturesRoot, 'pki/imports-pkcs11.ts'), 'utf8');
    const lint = async (layer: string): Promise<number> => {
      const [result] = await eslint.lintText(text, { filePath: join(repoRoot, 'src', layer, '__lint-fixture__.ts') });
      if (result === undefined) expect.fail(`no lint result for src/${layer}`);
      return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').length;
    };
    expect(await lint('pki')).to.equal(1);
    expect(await lint('hsm')).to.equal(0);
  });

  it('has valid rule options for every layer (an empty file in each lints cleanly)', async () => {
    const configUrl = pathToFileURL(join(repoRoot, 'eslint.config.js')).href;
    const { LAYERS } = (await import(configUrl)) as { LAYERS: readonly string[] };
    expect(LAYERS).to.include.members(['cli', 'server', 'agent', 'pki', 'tokens', 'hsm', 'config', 'core']);
    for (const layer of LAYERS) {
      // ESLint throws here if a layer's no-restricted-imports options fail its schema.
      const [result] = await eslint.lintText('export {};\n', {
        filePath: join(repoRoot, 'src', layer, '__lint-fixture__.ts'),
      });
      if (result === undefined) expect.fail(`no lint result for src/${layer}`);
      expect(result.messages, layer).to.deep.equal([]);
    }
  });

  it('keeps the fixtures out of the main lint run', async () => {
    expect(await eslint.isPathIgnored(join(fixturesRoot, 'pki', 'imports-pkcs11.ts'))).to.equal(true);
  });
});
