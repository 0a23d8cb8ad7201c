import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { format, formatWithOptions, inspect } from 'node:util';
import { Secret } from '../../../src/core/index.js';

describe('core/secret', () => {
  // A fresh value per run, so "never shows the value" cannot pass by luck.
  const value = `pin-${randomBytes(6).toString('hex')}`;
  let secret: Secret;

  beforeEach(() => {
    secret = Secret.from(value, 'file:/etc/credbroker/online.pin');
  });

  afterEach(() => {
    secret.dispose();
  });

  describe('prints [redacted] and never the value', () => {
    const renderings: [string, (s: Secret) => string][] = [
      ['String(s)', (s) => String(s)],
      // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- what the test is about
      ['template literal', (s) => `${s}`],
      ['concatenation', (s) => 'pin=' + (s as unknown as string)],
      ['s.toString()', (s) => s.toString()],
      ['JSON.stringify({ pin: s })', (s) => JSON.stringify({ pin: s })],
      ['util.inspect(s)', (s) => inspect(s)],
      ['util.inspect(s, { showHidden, depth })', (s) => inspect({ nested: { s } }, { showHidden: true, depth: 10 })],
      ['util.inspect without custom inspect', (s) => inspect(s, { customInspect: false, showHidden: true })],
      ["util.format('%s %o %j %O', ...)", (s) => format('%s %o %j %O', s, s, s, s)],
      ['console.log style (format of the bare value)', (s) => format(s)],
      ['formatWithOptions colors', (s) => formatWithOptions({ colors: true }, '%s', s)],
      // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- what the test is about
      ['an Error message', (s) => new Error(`login with ${s} failed`).message],
    ];
    for (const [name, render] of renderings) {
      it(name, () => {
        const text = render(secret);
        expect(text).not.to.include(value);
        if (!name.includes('without custom inspect')) expect(text).to.include('[redacted]');
      });
    }

    it('inspect names the source (safe to log)', () => {
      expect(inspect(secret)).to.equal('Secret([redacted], source=file:/etc/credbroker/online.pin)');
    });

    it('has no enumerable property holding the value', () => {
      expect(Object.keys(secret)).to.deep.equal(['source']);
      // eslint-disable-next-line @typescript-eslint/no-misused-spread -- what the test is about
      expect(JSON.stringify({ ...secret })).not.to.include(value);
    });
  });

  it('reveals the value only inside the callback', () => {
    expect(secret.reveal((v) => v)).to.equal(value);
    expect(secret.revealBytes((b) => Buffer.from(b).toString('utf8'))).to.equal(value);
    expect(secret.byteLength).to.equal(Buffer.byteLength(value));
  });

  it('copies its input: changing the caller’s bytes later does not change the secret', () => {
    const bytes = Buffer.from('abc');
    const copy = Secret.from(bytes);
    bytes.fill(0);
    expect(copy.reveal((v) => v)).to.equal('abc');
    expect(copy.source).to.equal('memory');
  });

  it('dispose zeroes the bytes, then every use throws', () => {
    let view: Uint8Array = new Uint8Array();
    secret.revealBytes((b) => {
      view = b;
    });
    expect(view.some((byte) => byte !== 0)).to.equal(true);
    secret.dispose();
    expect(secret.disposed).to.equal(true);
    expect([...view].every((byte) => byte === 0)).to.equal(true);
    expect(() => secret.reveal((v) => v)).to.throw(/already disposed/);
    expect(() => secret.revealBytes((b) => b)).to.throw(/already disposed/);
    expect(() => secret.byteLength).to.throw(/already disposed/);
    expect(String(secret)).to.equal('[redacted]');
    secret.dispose(); // twice is harmless
  });

  describe('equals', () => {
    const cases: [string, string, boolean][] = [
      ['same value', value, true],
      ['different value of the same length', value.replace(/.$/, (c) => (c === '0' ? '1' : '0')), false],
      ['a prefix', value.slice(0, -1), false],
      ['longer', `${value}x`, false],
      ['empty', '', false],
    ];
    for (const [name, other, expected] of cases) {
      it(`${name} -> ${String(expected)}`, () => {
        const otherSecret = Secret.from(other);
        expect(secret.equals(otherSecret)).to.equal(expected);
        expect(otherSecret.equals(secret)).to.equal(expected);
      });
    }

    it('throws when either side was disposed', () => {
      const other = Secret.from(value);
      other.dispose();
      expect(() => secret.equals(other)).to.throw(/disposed/);
      expect(() => other.equals(secret)).to.throw(/disposed/);
    });
  });
});
