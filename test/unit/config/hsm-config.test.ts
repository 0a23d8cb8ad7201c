import { expect } from 'chai';
import { configErrorMap, hsmConfigSchema, schemaProblems, type HsmConfig } from '../../../src/config/index.js';

/** The problems of parsing `input` as the hsm section, as `path: message` lines. */
function problems(input: unknown): string[] {
  const result = hsmConfigSchema.safeParse(input, { error: configErrorMap });
  if (result.success) return [];
  return schemaProblems(result.error).map((p) => `${p.path}: ${p.message}`);
}

const BASE = { token: 'credbroker-online', pin: { file: '/etc/credbroker/online.pin' } };

describe('config/hsm-config', () => {
  it('applies the defaults: 4 sessions, signMode auto, verifyAfterSign true, no module', () => {
    const config: HsmConfig = hsmConfigSchema.parse(BASE);
    expect(config).to.deep.equal({ ...BASE, sessions: 4, signMode: 'auto', verifyAfterSign: true });
    expect(config).not.to.have.property('module');
    expect(config).not.to.have.property('soPin');
  });

  describe('accepts', () => {
    const valid: [string, Record<string, unknown>][] = [
      ['an absolute module path', { module: '/usr/lib/softhsm/libsofthsm2.so' }],
      ['a bare library name', { module: 'libsofthsm2.so' }],
      ['a 32-byte label', { token: 'x'.repeat(32) }],
      ['a label with inner spaces', { token: 'credbroker online' }],
      ['1 session', { sessions: 1 }],
      ['64 sessions', { sessions: 64 }],
      ['signMode sync', { signMode: 'sync' }],
      ['signMode async', { signMode: 'async' }],
      ['verifyAfterSign false', { verifyAfterSign: false }],
      ['an fd PIN', { pin: { fd: 3 } }],
      ['a prompted PIN', { pin: { prompt: 'HSM user PIN: ' } }],
      ['an SO PIN source', { soPin: { prompt: 'SO PIN: ' } }],
    ];
    for (const [name, patch] of valid) {
      it(name, () => {
        expect(problems({ ...BASE, ...patch })).to.deep.equal([]);
      });
    }
  });

  describe('refuses', () => {
    const invalid: [string, Record<string, unknown>, string][] = [
      ['0 sessions', { sessions: 0 }, 'sessions: expected an integer >= 1, got 0'],
      ['65 sessions', { sessions: 65 }, 'sessions: expected an integer <= 64, got 65'],
      ['1.5 sessions', { sessions: 1.5 }, 'sessions: expected an integer, got 1.5'],
      ['sessions as text', { sessions: '4' }, 'sessions: expected an integer, got "4"'],
      ['an unknown signMode', { signMode: 'fast' }, 'signMode: expected one of "auto", "sync", "async", got "fast"'],
      ['verifyAfterSign as text', { verifyAfterSign: 'yes' }, 'verifyAfterSign: expected true or false, got "yes"'],
      ['an empty token label', { token: '' }, 'token: expected at least 1 character, got 0'],
      [
        'a 33-byte label',
        { token: 'x'.repeat(33) },
        'token: expected a token label of at most 32 bytes (PKCS#11 limit), got 33 bytes',
      ],
      [
        'a label over 32 bytes of UTF-8 but 17 characters',
        { token: 'é'.repeat(17) },
        'token: expected a token label of at most 32 bytes (PKCS#11 limit), got 34 bytes',
      ],
      [
        'a label with a trailing space',
        { token: 'online ' },
        'token: expected no leading or trailing spaces (PKCS#11 pads labels with spaces)',
      ],
      [
        'a relative module path',
        { module: 'lib/libsofthsm2.so' },
        'module: expected an absolute path to the PKCS#11 module, or a bare library file name',
      ],
      ['a missing token', { token: undefined }, 'token: missing: expected a string'],
      ['an unknown key', { slot: 0 }, 'slot: unknown key "slot"; allowed here: module, token, pin, soPin,'],
    ];
    for (const [name, patch, expected] of invalid) {
      it(name, () => {
        const found = problems({ ...BASE, ...patch });
        expect(found).to.have.length(1);
        expect(found[0]).to.satisfy((line: string) => line.startsWith(expected), `${found[0]} vs ${expected}`);
      });
    }

    it('a missing PIN, naming the accepted forms', () => {
      expect(problems({ token: 't' })).to.deep.equal([
        'pin: missing: expected one of { file: <path> }, { fd: <n> }, { prompt: <text> } for the HSM user PIN',
      ]);
    });

    it('a plain SO PIN, with the explanation', () => {
      const found = problems({ ...BASE, soPin: '12345678' });
      expect(found).to.have.length(1);
      expect(found[0]).to.match(/^soPin: the HSM security officer PIN is a secret, and a secret is never written/);
      expect(found[0]).not.to.include('12345678');
    });
  });
});
