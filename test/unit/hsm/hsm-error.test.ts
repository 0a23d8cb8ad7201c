import { expect } from 'chai';
import pkcs11js from 'pkcs11js';
import { BrokerError } from '../../../src/core/index.js';
import { ckrName, isSessionLost, toHsmError } from '../../../src/hsm/index.js';

/** An error shaped like the ones pkcs11js throws. */
function pkcs11Error(name: keyof typeof pkcs11js): Error {
  const code = pkcs11js[name] as number;
  return Object.assign(new Error(`${name}:${code}`), { name: 'Pkcs11Error', code, method: 'C_Test' });
}

const context = { operation: 'sign', token: 'online', key: 'intermediate-2026' };

describe('hsm/hsm-error: PKCS#11 codes become named errors', () => {
  const table: [keyof typeof pkcs11js, string, BrokerError['kind'], boolean, RegExp][] = [
    ['CKR_PIN_INCORRECT', 'hsm.pin_incorrect', 'unauthenticated', false, /incorrect.*not retried/],
    ['CKR_PIN_LOCKED', 'hsm.pin_locked', 'unauthenticated', false, /locked.*security officer/],
    ['CKR_PIN_EXPIRED', 'hsm.pin_expired', 'unauthenticated', false, /expired/],
    ['CKR_PIN_LEN_RANGE', 'hsm.pin_invalid', 'invalid', false, /length or characters/],
    ['CKR_TOKEN_NOT_PRESENT', 'hsm.session_lost', 'unavailable', true, /not reachable.*retry later/],
    ['CKR_DEVICE_REMOVED', 'hsm.session_lost', 'unavailable', true, /not reachable/],
    ['CKR_DEVICE_ERROR', 'hsm.session_lost', 'unavailable', true, /not reachable/],
    ['CKR_SESSION_HANDLE_INVALID', 'hsm.session_lost', 'unavailable', true, /not reachable/],
    ['CKR_SESSION_CLOSED', 'hsm.session_lost', 'unavailable', true, /not reachable/],
    ['CKR_KEY_HANDLE_INVALID', 'hsm.session_lost', 'unavailable', true, /no longer valid/],
    ['CKR_MECHANISM_INVALID', 'hsm.mechanism_unsupported', 'invalid', false, /does not support/],
    ['CKR_TEMPLATE_INCONSISTENT', 'hsm.mechanism_unsupported', 'invalid', false, /does not support/],
    ['CKR_TOKEN_WRITE_PROTECTED', 'hsm.token_read_only', 'conflict', false, /write-protected/],
    ['CKR_ARGUMENTS_BAD', 'hsm.failed', 'internal', false, /failed; see the broker log/],
  ];
  for (const [ckr, code, kind, retryable, message] of table) {
    it(`${ckr} -> ${code} (${kind})`, () => {
      const error = toHsmError(pkcs11Error(ckr), context);
      expect(error).to.be.instanceOf(BrokerError);
      expect(error.code).to.equal(code);
      expect(error.kind).to.equal(kind);
      expect(error.retryable).to.equal(retryable);
      expect(error.publicMessage).to.match(message);
      // Which token and which key, for people; the raw code only in the log message.
      expect(error.publicMessage).to.contain('"online"');
      expect(error.publicMessage).to.not.contain('CKR_');
      expect(error.logMessage).to.contain(ckr).and.to.contain('intermediate-2026');
      expect(isSessionLost(pkcs11Error(ckr))).to.equal(code === 'hsm.session_lost' && ckr !== 'CKR_KEY_HANDLE_INVALID');
    });
  }

  it('reads the CKR name from the code or the message', () => {
    expect(ckrName(pkcs11Error('CKR_PIN_INCORRECT'))).to.equal('CKR_PIN_INCORRECT');
    expect(ckrName(new Error('Error: CKR_PIN_LOCKED:164'))).to.equal('CKR_PIN_LOCKED');
    expect(ckrName(new Error('something else'))).to.equal(null);
    expect(ckrName('not an error')).to.equal(null);
  });

  it('passes BrokerErrors through unchanged', () => {
    const original = new BrokerError('not_found', { code: 'hsm.key_not_found', publicMessage: 'x' });
    expect(toHsmError(original, context)).to.equal(original);
  });
});
