import { expect } from 'chai';
import { BrokerError, ERROR_KINDS, isBrokerError, toBrokerError, type ErrorKind } from '../../../src/core/index.js';

describe('core/errors', () => {
  describe('BrokerError', () => {
    it('exists for every kind, and only kind unavailable is retryable by default', () => {
      expect(ERROR_KINDS).to.have.members([
        'invalid',
        'unauthenticated',
        'denied',
        'not_found',
        'conflict',
        'exhausted',
        'unavailable',
        'internal',
      ]);
      for (const kind of ERROR_KINDS) {
        const error = new BrokerError(kind, { code: `test.${kind}`, publicMessage: 'p' });
        expect(error).to.be.instanceOf(Error);
        expect(error.kind).to.equal(kind);
        expect(error.code).to.equal(`test.${kind}`);
        expect(error.retryable, kind).to.equal(kind === 'unavailable');
      }
    });

    it('keeps the public and the log message apart; Error.message is the log message', () => {
      const error = new BrokerError('unavailable', {
        code: 'hsm.token_lost',
        publicMessage: 'the HSM is unavailable; retry later',
        logMessage: 'C_Sign on token "online" failed: CKR_DEVICE_REMOVED',
      });
      expect(error.publicMessage).to.equal('the HSM is unavailable; retry later');
      expect(error.publicMessage).not.to.include('CKR_');
      expect(error.logMessage).to.include('CKR_DEVICE_REMOVED');
      expect(error.message).to.equal(error.logMessage);
      expect(error.name).to.equal('BrokerError');
    });

    it('uses the public message as log message when none is given', () => {
      const error = new BrokerError('invalid', { code: 'x', publicMessage: 'bad csr' });
      expect(error.logMessage).to.equal('bad csr');
      expect(error.message).to.equal('bad csr');
    });

    it('keeps the cause, and shows it in the log object by name and message only', () => {
      const cause = new TypeError('low-level detail');
      const error = new BrokerError('internal', { code: 'x', publicMessage: 'internal error', cause });
      expect(error.cause).to.equal(cause);
      expect(error.toLogObject()).to.deep.equal({
        kind: 'internal',
        code: 'x',
        message: 'internal error',
        cause: 'TypeError: low-level detail',
      });
      expect(new BrokerError('invalid', { code: 'y', publicMessage: 'p' }).toLogObject()).not.to.have.property('cause');
    });

    it('lets retryable be set explicitly (a PIN error is never retried)', () => {
      const pin = new BrokerError('unavailable', { code: 'hsm.pin_locked', publicMessage: 'p', retryable: false });
      expect(pin.retryable).to.equal(false);
    });
  });

  describe('isBrokerError', () => {
    const error = new BrokerError('denied', { code: 'policy.denied', publicMessage: 'no' });
    const cases: [string, unknown, string | undefined, boolean][] = [
      ['any BrokerError', error, undefined, true],
      ['matching kind', error, 'denied', true],
      ['matching code', error, 'policy.denied', true],
      ['other kind', error, 'invalid', false],
      ['plain Error', new Error('denied'), undefined, false],
      ['a string', 'denied', 'denied', false],
    ];
    for (const [name, value, kindOrCode, expected] of cases) {
      it(`${name} -> ${String(expected)}`, () => {
        expect(isBrokerError(value, kindOrCode)).to.equal(expected);
      });
    }
  });

  describe('toBrokerError', () => {
    it('keeps a BrokerError as it is', () => {
      const error = new BrokerError('conflict', { code: 'c', publicMessage: 'p' });
      expect(toBrokerError(error)).to.equal(error);
    });

    it('hides the text of any other error behind "internal error", keeping it for the log', () => {
      const raw = new Error('ENOENT: /var/lib/credbroker/secret-path');
      const wrapped = toBrokerError(raw, 'store.failed');
      const kind: ErrorKind = wrapped.kind;
      expect(kind).to.equal('internal');
      expect(wrapped.code).to.equal('store.failed');
      expect(wrapped.publicMessage).to.equal('internal error');
      expect(wrapped.publicMessage).not.to.include('secret-path');
      expect(wrapped.logMessage).to.include('secret-path');
      expect(wrapped.cause).to.equal(raw);
    });

    it('wraps thrown non-errors with code internal by default', () => {
      const wrapped = toBrokerError('a string was thrown');
      expect(wrapped.code).to.equal('internal');
      expect(wrapped.publicMessage).to.equal('internal error');
      expect(wrapped.logMessage).to.equal('a string was thrown');
    });
  });
});
