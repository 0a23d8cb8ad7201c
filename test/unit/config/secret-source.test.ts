import { expect } from 'chai';
import {
  configErrorMap,
  describeSecretSource,
  schemaProblems,
  secretSource,
  secretSourceSchema,
} from '../../../src/config/index.js';

function problems(input: unknown, schema = secretSourceSchema): string[] {
  const result = schema.safeParse(input, { error: configErrorMap });
  if (result.success) return [];
  return schemaProblems(result.error).map((p) => (p.path === '' ? p.message : `${p.path}: ${p.message}`));
}

const NEVER_IN_CONFIG = /is a secret, and a secret is never written in a config file or an environment variable; use \{ file: <path> \} \(a file with mode 0600 owned by this user\), \{ fd: <n> \} \(an inherited file descriptor >= 3\) or \{ prompt: <text> \}/;

describe('config/secret-source', () => {
  describe('accepts exactly one of file, fd, prompt', () => {
    const valid: [unknown, unknown][] = [
      [{ file: '/etc/credbroker/online.pin' }, { file: '/etc/credbroker/online.pin' }],
      [{ file: 'relative.pin' }, { file: 'relative.pin' }],
      [{ fd: 3 }, { fd: 3 }],
      [{ fd: 42 }, { fd: 42 }],
      [{ prompt: 'HSM user PIN: ' }, { prompt: 'HSM user PIN: ' }],
    ];
    for (const [input, output] of valid) {
      it(JSON.stringify(input), () => {
        expect(secretSourceSchema.parse(input)).to.deep.equal(output);
      });
    }
  });

  describe('refuses a secret written in the config, with the explanation and without echoing it', () => {
    const inline: [string, unknown, string][] = [
      ['a string', '1234', ''],
      ['a number', 1234, ''],
      ['a boolean', true, ''],
      ['value', { value: '1234' }, 'value: '],
      ['env', { env: 'HSM_PIN' }, 'env: '],
      ['literal', { literal: '1234' }, 'literal: '],
      ['password', { password: '1234' }, 'password: '],
      ['Value (any case)', { Value: '1234' }, 'Value: '],
      ['value next to a valid key', { file: '/x', value: '1234' }, 'value: '],
    ];
    for (const [name, input, pathPrefix] of inline) {
      it(name, () => {
        const found = problems(input, secretSource('HSM user PIN'));
        expect(found).to.have.length(1);
        expect(found[0]).to.satisfy((m: string) => m.startsWith(`${pathPrefix}the HSM user PIN is a secret`));
        expect(found[0]).to.match(NEVER_IN_CONFIG);
        expect(found[0]).not.to.include('1234');
        expect(found[0]).not.to.include('HSM_PIN');
      });
    }
  });

  describe('refuses malformed sources, naming the problem', () => {
    const cases: [string, unknown, string[]][] = [
      ['nothing', undefined, ['missing: expected one of { file: <path> }, { fd: <n> }, { prompt: <text> } for the secret']],
      ['null', null, ['expected one of { file: <path> }, { fd: <n> }, { prompt: <text> } for the secret']],
      ['a list', ['a'], ['expected one of { file: <path> }, { fd: <n> }, { prompt: <text> } for the secret']],
      ['an empty mapping', {}, ['expected exactly one of file, fd, prompt, got none']],
      ['two sources', { file: '/x', fd: 3 }, ['expected exactly one of file, fd, prompt, got file and fd']],
      ['stdin as fd', { fd: 0 }, ['fd: expected a file descriptor >= 3 (0, 1 and 2 are stdin, stdout and stderr), got 0']],
      ['stderr as fd', { fd: 2 }, ['fd: expected a file descriptor >= 3 (0, 1 and 2 are stdin, stdout and stderr), got 2']],
      ['a fractional fd', { fd: 3.5 }, ['fd: expected a file descriptor number (an integer >= 3)']],
      ['an fd as text', { fd: '3' }, ['fd: expected a file descriptor number (an integer >= 3)']],
      ['an empty path', { file: '' }, ['file: expected a non-empty path']],
      ['a path that is not text', { file: 600 }, ['file: expected the path of the file that holds the secret (a string)']],
      ['an empty prompt', { prompt: '' }, ['prompt: expected a non-empty prompt text']],
      [
        'an unknown key',
        { path: '/x' },
        ['path: unknown key "path"; allowed here: file, fd, prompt', 'expected exactly one of file, fd, prompt, got none'],
      ],
    ];
    for (const [name, input, expected] of cases) {
      it(name, () => {
        expect(problems(input)).to.deep.equal(expected);
      });
    }
  });

  it('describes sources safely for logs', () => {
    expect(describeSecretSource({ file: '/etc/credbroker/online.pin' })).to.equal('file:/etc/credbroker/online.pin');
    expect(describeSecretSource({ fd: 3 })).to.equal('fd:3');
    expect(describeSecretSource({ prompt: 'PIN: ' })).to.equal('prompt');
  });
});
