import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { isBrokerError } from '../../../src/core/index.js';
import {
  brokerConfigSchema,
  ConfigError,
  formatConfigPath,
  loadConfigFile,
  parseConfig,
  secretSource,
} from '../../../src/config/index.js';

/** Runs `fn`, expects a ConfigError and returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return error as ConfigError;
  }
  expect.fail('expected a ConfigError');
}

const VALID = `
hsm:
  module: /usr/lib/softhsm/libsofthsm2.so
  token: credbroker-online
  pin: { file: /etc/credbroker/online.pin }
`;

describe('config/parse-config', () => {
  it('returns the validated config with defaults applied', () => {
    const config = parseConfig(VALID, brokerConfigSchema, 'broker.yaml');
    expect(config).to.deep.equal({
      hsm: {
        module: '/usr/lib/softhsm/libsofthsm2.so',
        token: 'credbroker-online',
        pin: { file: '/etc/credbroker/online.pin' },
        sessions: 4,
        signMode: 'auto',
        verifyAfterSign: true,
      },
    });
  });

  it('freezes the result all the way down', () => {
    const config = parseConfig(VALID, brokerConfigSchema, 'broker.yaml');
    expect(Object.isFrozen(config)).to.equal(true);
    expect(Object.isFrozen(config.hsm)).to.equal(true);
    expect(Object.isFrozen(config.hsm.pin)).to.equal(true);
    expect(() => {
      (config.hsm as { sessions: number }).sessions = 64;
    }).to.throw(TypeError);
    expect(() => {
      (config.hsm.pin as { file: string }).file = '/tmp/other';
    }).to.throw(TypeError);
    expect(config.hsm.sessions).to.equal(4);
  });

  it('freezes lists and objects inside lists too', () => {
    const schema = z.strictObject({ items: z.array(z.strictObject({ name: z.string() })) });
    const config = parseConfig('items: [{ name: a }, { name: b }]', schema, 'list.yaml');
    expect(Object.isFrozen(config.items)).to.equal(true);
    expect(Object.isFrozen(config.items[1])).to.equal(true);
    expect(() => (config.items as { name: string }[]).push({ name: 'c' })).to.throw(TypeError);
  });

  it('is a ConfigError: a BrokerError of kind invalid, code config.invalid', () => {
    const error = configError(() => parseConfig('hsm: 1', brokerConfigSchema, 'broker.yaml'));
    expect(isBrokerError(error, 'invalid')).to.equal(true);
    expect(error.code).to.equal('config.invalid');
    expect(error.name).to.equal('ConfigError');
    expect(error.source).to.equal('broker.yaml');
    expect(Object.isFrozen(error.problems)).to.equal(true);
  });

  describe('unknown keys', () => {
    it('at the top level: names the key', () => {
      const error = configError(() => parseConfig(`${VALID}\nlistener: {}\n`, brokerConfigSchema, 'broker.yaml'));
      expect(error.problems).to.have.length(1);
      expect(error.problems[0]?.path).to.equal('listener');
      expect(error.problems[0]?.message).to.match(/^unknown key "listener"; allowed here: hsm, ca, server, store, policy, audit, tokens, metrics$/);
      expect(error.message).to.include('broker.yaml').and.include('listener: unknown key "listener"');
    });

    it('nested: names each key with its dotted path, and the keys allowed there', () => {
      const text = `${VALID}  colour: red\n  slots: [1]\n`;
      const error = configError(() => parseConfig(text, brokerConfigSchema, 'broker.yaml'));
      expect(error.problems.map((p) => p.path)).to.deep.equal(['hsm.colour', 'hsm.slots']);
      expect(error.problems[0]?.message).to.include('unknown key "colour"').and.include('allowed here: module, token, pin');
    });

    it('suggests the key that was meant', () => {
      const error = configError(() => parseConfig(`${VALID}  sign_mode: sync\n`, brokerConfigSchema, 'b.yaml'));
      expect(error.problems[0]?.message).to.include('(did you mean "signMode"?)');
    });

    it('inside a secret source', () => {
      const text = VALID.replace('{ file: /etc/credbroker/online.pin }', '{ file: /x, mode: 384 }');
      const error = configError(() => parseConfig(text, brokerConfigSchema, 'b.yaml'));
      expect(error.problems).to.deep.equal([
        { path: 'hsm.pin.mode', message: 'unknown key "mode"; allowed here: file, fd, prompt' },
      ]);
    });
  });

  it('reports every problem at once, each with its path, and names the file', () => {
    const text = `
hsm:
  token: ""
  pin: { fd: 2 }
  sessions: 0
  signMode: fast
  verifyAfterSign: "yes"
  extra: 1
other: 2
`;
    const error = configError(() => parseConfig(text, brokerConfigSchema, '/etc/credbroker/broker.yaml'));
    expect(error.problems).to.deep.equal([
      { path: 'hsm.token', message: 'expected at least 1 character, got 0' },
      {
        path: 'hsm.pin.fd',
        message: 'expected a file descriptor >= 3 (0, 1 and 2 are stdin, stdout and stderr), got 2',
      },
      { path: 'hsm.sessions', message: 'expected an integer >= 1, got 0' },
      { path: 'hsm.signMode', message: 'expected one of "auto", "sync", "async", got "fast"' },
      { path: 'hsm.verifyAfterSign', message: 'expected true or false, got "yes"' },
      {
        path: 'hsm.extra',
        message:
          'unknown key "extra"; allowed here: module, token, pin, soPin, sessions, signMode, verifyAfterSign',
      },
      { path: 'other', message: 'unknown key "other"; allowed here: hsm, ca, server, store, policy, audit, tokens, metrics' },
    ]);
    const lines = error.message.split('\n');
    expect(lines[0]).to.equal('invalid configuration in /etc/credbroker/broker.yaml (7 problems):');
    expect(lines).to.have.length(8);
    expect(lines).to.include('  - hsm.sessions: expected an integer >= 1, got 0');
  });

  it('reports missing required keys by path', () => {
    const error = configError(() => parseConfig('hsm: { sessions: 2 }', brokerConfigSchema, 'b.yaml'));
    expect(error.problems.map((p) => p.path)).to.deep.equal(['hsm.token', 'hsm.pin']);
    expect(error.problems[0]?.message).to.equal('missing: expected a string');
    expect(error.problems[1]?.message).to.include('missing').and.include('{ file: <path> }');
  });

  it('treats an empty file as an empty mapping, so every required key is reported', () => {
    for (const text of ['', '# only a comment\n', '~\n']) {
      const error = configError(() => parseConfig(text, brokerConfigSchema, 'empty.yaml'));
      expect(error.problems).to.deep.equal([{ path: 'hsm', message: 'missing: expected a mapping' }]);
    }
  });

  it('refuses a document that is not a mapping', () => {
    const error = configError(() => parseConfig('- a\n- b\n', brokerConfigSchema, 'list.yaml'));
    expect(error.problems).to.deep.equal([{ path: '', message: 'expected a mapping, got a list' }]);
  });

  describe('YAML syntax errors', () => {
    const cases: [string, string, number, number, RegExp][] = [
      ['unclosed flow sequence (reported where the input ends)', 'hsm:\n  token: [a, b\n', 3, 1, /Flow sequence/],
      ['duplicate key', 'hsm:\n  token: a\n  token: b\n', 3, 3, /unique/],
      ['bad indentation', 'hsm:\n  token: a\n   pin: b\n', 2, 10, /Nested mappings/],
      ['tab indentation', 'hsm:\n\ttoken: a\n', 2, 1, /Tabs/],
      ['two documents', 'hsm: {}\n---\nhsm: {}\n', 2, 1, /multiple documents/],
    ];
    for (const [name, text, line, column, pattern] of cases) {
      it(`${name}: ConfigError with line and column`, () => {
        const error = configError(() => parseConfig(text, brokerConfigSchema, 'broken.yaml'));
        const first = error.problems[0];
        if (first === undefined) expect.fail('no problem reported');
        expect(first.line, 'line').to.equal(line);
        expect(first.column, 'column').to.equal(column);
        expect(first.message).to.match(pattern).and.include(`YAML syntax error at line ${line}, column ${column}`);
        expect(error.message).to.include('broken.yaml');
      });
    }

    it('an alias to nothing', () => {
      const error = configError(() => parseConfig('hsm: *missing\n', brokerConfigSchema, 'alias.yaml'));
      expect(error.message).to.match(/alias/i);
    });
  });

  describe('a secret written into the config', () => {
    const plain: [string, string][] = [
      ['a quoted string', 'pin: "1234"'],
      ['a number', 'pin: 1234'],
      ['a bare word', 'pin: hunter2'],
      ['value:', 'pin: { value: "1234" }'],
      ['env:', 'pin: { env: HSM_PIN }'],
      ['literal:', 'pin: { literal: "1234" }'],
    ];
    for (const [name, line] of plain) {
      it(`${name} is refused with the explanation, without echoing it`, () => {
        const text = `hsm:\n  token: t\n  ${line}\n`;
        const error = configError(() => parseConfig(text, brokerConfigSchema, 'b.yaml'));
        expect(error.problems).to.have.length(1);
        const problem = error.problems[0];
        if (problem === undefined) expect.fail('no problem reported');
        expect(problem.path).to.match(/^hsm\.pin(\.(value|env|literal))?$/);
        expect(problem.message)
          .to.include('HSM user PIN is a secret')
          .and.include('never written in a config file or an environment variable')
          .and.include('{ file: <path> } (a file with mode 0600')
          .and.include('{ fd: <n> }')
          .and.include('{ prompt: <text> }');
        expect(error.message).not.to.include('1234');
        expect(error.message).not.to.include('hunter2');
      });
    }
  });

  describe('relative secret file paths', () => {
    it('resolves them against baseDir and keeps absolute ones', () => {
      const schema = z.strictObject({ a: secretSource('a'), b: secretSource('b'), c: secretSource('c') });
      const text = 'a: { file: ./pins/a.pin }\nb: { file: /abs/b.pin }\nc: { fd: 3 }\n';
      const config = parseConfig(text, schema, 'x.yaml', { baseDir: '/etc/credbroker' });
      expect(config).to.deep.equal({
        a: { file: '/etc/credbroker/pins/a.pin' },
        b: { file: '/abs/b.pin' },
        c: { fd: 3 },
      });
    });

    it('resolves them against the working directory without baseDir', () => {
      const config = parseConfig('hsm: { token: t, pin: { file: online.pin } }', brokerConfigSchema, 'x.yaml');
      expect(config.hsm.pin).to.deep.equal({ file: join(process.cwd(), 'online.pin') });
    });

    it('leaves strings that are not secret sources alone', () => {
      const schema = z.strictObject({ file: z.string(), nested: z.strictObject({ file: z.string() }) });
      const config = parseConfig('file: ./a\nnested: { file: ./b }\n', schema, 'x.yaml', { baseDir: '/etc' });
      expect(config).to.deep.equal({ file: './a', nested: { file: './b' } });
    });
  });

  describe('loadConfigFile', () => {
    let dir: string;

    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'credbroker-config-'));
    });

    after(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    it('reads the file and resolves relative secret files against its folder', () => {
      mkdirSync(join(dir, 'etc'));
      const file = join(dir, 'etc', 'broker.yaml');
      writeFileSync(file, 'hsm:\n  token: credbroker-online\n  pin: { file: ./online.pin }\n  sessions: 8\n');
      const config = loadConfigFile(file, brokerConfigSchema);
      expect(config.hsm.pin).to.deep.equal({ file: join(dir, 'etc', 'online.pin') });
      expect(config.hsm.sessions).to.equal(8);
      expect(Object.isFrozen(config.hsm)).to.equal(true);
    });

    it('names the file (absolute) in schema errors', () => {
      const file = join(dir, 'bad.yaml');
      writeFileSync(file, 'hsm:\n  token: t\n  pin: { prompt: "PIN: " }\n  sessions: 65\n');
      const error = configError(() => loadConfigFile(file, brokerConfigSchema));
      expect(error.source).to.equal(file);
      expect(error.message).to.include(file).and.include('hsm.sessions: expected an integer <= 64, got 65');
    });

    it('a missing file: names the file and the OS reason', () => {
      const file = join(dir, 'nope.yaml');
      const error = configError(() => loadConfigFile(file, brokerConfigSchema));
      expect(error.message).to.equal(`cannot read configuration file ${file}: no such file or directory (ENOENT)`);
      expect(error.problems).to.deep.equal([{ path: '', message: 'cannot read the file: no such file or directory (ENOENT)' }]);
      expect((error.cause as NodeJS.ErrnoException).code).to.equal('ENOENT');
    });

    it('a directory: names the file and the OS reason', () => {
      const error = configError(() => loadConfigFile(dir, brokerConfigSchema));
      expect(error.message).to.include(dir).and.include('(EISDIR)');
    });
  });

  describe('formatConfigPath', () => {
    const cases: [PropertyKey[], string][] = [
      [[], ''],
      [['hsm'], 'hsm'],
      [['hsm', 'pin', 'fd'], 'hsm.pin.fd'],
      [['policy', 'entries', 2, 'ttl'], 'policy.entries[2].ttl'],
      [['labels', 'a.b'], 'labels["a.b"]'],
      [[0], '[0]'],
    ];
    for (const [path, text] of cases) {
      it(`${JSON.stringify(path)} -> ${JSON.stringify(text)}`, () => {
        expect(formatConfigPath(path)).to.equal(text);
      });
    }
  });
});
