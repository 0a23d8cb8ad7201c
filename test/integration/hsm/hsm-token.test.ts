/**
 * The PKCS#11 layer against a real SoftHSM token made by this test run.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { BrokerError, Secret, verifySignature, type KeyType } from '../../../src/core/index.js';
import { HsmSigner, HsmToken, Pkcs11Library, findTokenByLabel, type SetTimer } from '../../../src/hsm/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { countLogins, createTestToken, type TestToken } from '../../helpers/softhsm.js';


/** A timer seam that records the callbacks instead of waiting: the test decides when they run. */
function manualTimers(): { setTimer: SetTimer; pending: (() => void)[]; delays: number[] } {
  const pending: (() => void)[] = [];
  const delays: number[] = [];
  return {
    pending,
    delays,
    setTimer: (callback, delayMs) => {
      pending.push(callback);
      delays.push(delayMs);
      return { cancel: () => pending.splice(pending.indexOf(callback), 1) };
    },
  };
}

describe('integration: HsmToken on SoftHSM', function () {
  let testToken: TestToken;
  let token: HsmToken;
  let library: Pkcs11Library;

  before(async () => {
    testToken = createTestToken('hsm');
    token = await HsmToken.open({ modulePath: testToken.modulePath, tokenLabel: testToken.label, pin: testToken.pin, sessions: 4 });
    library = Pkcs11Library.acquire(testToken.modulePath);
  });

  after(async () => {
    // Guarded: when SoftHSM is missing, `before` failed with how to install it; say only that.
    if ((token as HsmToken | undefined) !== undefined) await token.close();
    if ((library as Pkcs11Library | undefined) !== undefined) library.release();
  });

  /** A separate logged-in session for inspecting objects the way an attacker with the PIN would. */
  function inspector<T>(action: (api: pkcs11js.PKCS11, session: Buffer) => T): T {
    const api = library.api;
    const session = api.C_OpenSession(findTokenByLabel(api, testToken.label).slot, pkcs11js.CKF_SERIAL_SESSION);
    try {
      return action(api, session);
    } finally {
      api.C_CloseSession(session);
    }
  }

  function privateKeyHandles(api: pkcs11js.PKCS11, session: Buffer, label: string): Buffer[] {
    api.C_FindObjectsInit(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    const handles = api.C_FindObjects(session, 10);
    api.C_FindObjectsFinal(session);
    return handles;
  }

  describe('key generation', () => {
    for (const keyType of ['P-256', 'P-384', 'RSA-3072', 'Ed25519'] as KeyType[]) {
      it(`${keyType}: a sensitive, non-extractable token key whose private value cannot be read`, async () => {
        const label = `gen-${keyType}`;
        const info = await token.generateKeyPair({ label, keyType });
        expect(info).to.include({ label, keyType, sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true });
        expect(info.id).to.match(/^[0-9a-f]{32}$/);
        inspector((api, session) => {
          const [handle] = privateKeyHandles(api, session, label);
          expect(handle, 'private key found').to.not.equal(undefined);
          const attributes = api.C_GetAttributeValue(session, handle!, [
            { type: pkcs11js.CKA_TOKEN },
            { type: pkcs11js.CKA_PRIVATE },
            { type: pkcs11js.CKA_SENSITIVE },
            { type: pkcs11js.CKA_EXTRACTABLE },
          ]);
          expect(attributes.map((a) => (a.value as Buffer | undefined)?.[0])).to.deep.equal([1, 1, 1, 0]);
          // The key's secret part must be unreadable even to a logged-in session.
          const secretAttribute = keyType === 'RSA-3072' ? pkcs11js.CKA_PRIVATE_EXPONENT : pkcs11js.CKA_VALUE;
          expect(() => api.C_GetAttributeValue(session, handle!, [{ type: secretAttribute }])).to.throw(/CKR_ATTRIBUTE_SENSITIVE/);
        });
        const signer = await HsmSigner.create(token, label);
        const message = randomBytes(100);
        expect(verifySignature(signer.algorithm, signer.publicKey, message, await signer.sign(message))).to.equal(true);
      });
    }

    it('refuses a label that already exists and creates nothing', async () => {
      await token.generateKeyPair({ label: 'taken', keyType: 'P-256' });
      const before = await token.listKeys();
      const error = await catchBrokerError(token.generateKeyPair({ label: 'taken', keyType: 'RSA-3072' }));
      expect(error.code).to.equal('hsm.key_exists');
      expect(error.kind).to.equal('conflict');
      expect(error.publicMessage).to.contain('"taken"').and.to.contain(testToken.label);
      const after = await token.listKeys();
      expect(after.map((k) => [k.label, k.id])).to.deep.equal(before.map((k) => [k.label, k.id]));
      expect(after.find((k) => k.label === 'taken')?.keyType).to.equal('P-256');
    });

    it('refuses a label that is not printable ASCII', async () => {
      const error = await catchBrokerError(token.generateKeyPair({ label: ' padded ', keyType: 'P-256' }));
      expect(error.code).to.equal('hsm.invalid_label');
    });

    it('lists the token as supporting every key type credbroker uses', () => {
      expect(token.supportedKeyTypes()).to.deep.equal(['P-256', 'P-384', 'RSA-3072', 'Ed25519']);
    });
  });

  describe('lookup', () => {
    it('a missing key is named by label and token', async () => {
      const error = await catchBrokerError(HsmSigner.create(token, 'no-such-key'));
      expect(error.code).to.equal('hsm.key_not_found');
      expect(error.kind).to.equal('not_found');
      expect(error.publicMessage).to.contain('"no-such-key"').and.to.contain(`"${testToken.label}"`);
    });

    it('exports the public key that verifies the token-made signature (SPKI round trip)', async () => {
      await token.generateKeyPair({ label: 'spki', keyType: 'P-384' });
      const info = await token.findKey('spki');
      expect(info.publicKey?.asymmetricKeyDetails?.namedCurve).to.equal('secp384r1');
      const spki = info.publicKey!.export({ format: 'der', type: 'spki' });
      expect(spki[0]).to.equal(0x30);
    });
  });

  describe('login', () => {
    it('an unknown token label is named, with the labels present', async () => {
      const error = await catchBrokerError(HsmToken.open({ modulePath: testToken.modulePath, tokenLabel: 'no-such-token', pin: testToken.pin }));
      expect(error.code).to.equal('hsm.token_not_found');
      expect(error.publicMessage).to.contain('"no-such-token"').and.to.contain(`"${testToken.label}"`);
    });

    it('a module path that does not exist is named', async () => {
      const error = await catchBrokerError(HsmToken.open({ modulePath: '/nonexistent/libpkcs11.so', tokenLabel: testToken.label, pin: testToken.pin }));
      expect(error.code).to.equal('hsm.module_not_found');
      expect(error.publicMessage).to.contain('/nonexistent/libpkcs11.so');
    });

    it('a wrong PIN is a named error after exactly one C_Login, never retried', async () => {
      const fresh = createTestToken('wrongpin');
      const timers = manualTimers();
      const { logins, error: caught } = await countLogins(() =>
        HsmToken.open({ modulePath: fresh.modulePath, tokenLabel: fresh.label, pin: Secret.from(randomBytes(8).toString('hex')), setTimer: timers.setTimer }),
      );
      expect(caught).to.be.instanceOf(BrokerError);
      const error = caught as BrokerError;
      expect(error.code).to.equal('hsm.pin_incorrect');
      expect(error.kind).to.equal('unauthenticated');
      expect(error.retryable).to.equal(false);
      expect(error.publicMessage).to.contain(fresh.label).and.to.contain('not retried');
      expect(error.publicMessage).to.not.contain('CKR_');
      expect(error.logMessage).to.contain('CKR_PIN_INCORRECT');
      expect(logins).to.equal(1);
      expect(timers.pending).to.have.length(0);
    });

    it('a PIN refused while reconnecting stops reconnection (state failed) instead of burning attempts', async () => {
      const fresh = createTestToken('pinchange');
      const timers = manualTimers();
      const own = await HsmToken.open({ modulePath: fresh.modulePath, tokenLabel: fresh.label, pin: fresh.pin, sessions: 1, setTimer: timers.setTimer });
      try {
        const failed = new Promise<BrokerError>((resolve) => own.once('failed', resolve));
        own.markLost('test');
        expect(own.state).to.equal('reconnecting');
        // Meanwhile a security officer changes the user PIN (closing our sessions logs us out).
        const api = library.api;
        const slot = findTokenByLabel(api, fresh.label).slot;
        api.C_CloseAllSessions(slot);
        const soSession = api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
        fresh.soPin.reveal((soPin) => {
          api.C_Login(soSession, pkcs11js.CKU_SO, soPin);
        });
        api.C_InitPIN(soSession, randomBytes(8).toString('hex'));
        api.C_Logout(soSession);
        api.C_CloseSession(soSession);
        expect(timers.pending).to.have.length(1);
        timers.pending.shift()!();
        expect((await failed).code).to.equal('hsm.pin_incorrect');
        expect(own.state).to.equal('failed');
        expect(timers.pending, 'no further reconnect scheduled').to.have.length(0);
      } finally {
        await own.close();
      }
    });
  });

  describe('verify-after-sign', () => {
    it('catches a corrupted signature, retries once and returns a valid one', async () => {
      await token.generateKeyPair({ label: 'corrupt-once', keyType: 'P-256' });
      let calls = 0;
      const corrupted = await HsmToken.open({
        modulePath: testToken.modulePath,
        tokenLabel: testToken.label,
        pin: testToken.pin,
        sessions: 1,
        testHooks: {
          afterSign: (signature) => {
            calls++;
            if (calls > 1) return signature;
            const copy = Buffer.from(signature);
            copy[5] = (copy[5] ?? 0) ^ 0xff;
            return copy;
          },
        },
      });
      try {
        const signer = await HsmSigner.create(corrupted, 'corrupt-once');
        const message = Buffer.from('to be signed');
        const signature = await signer.sign(message);
        expect(verifySignature('ES256', signer.publicKey, message, signature)).to.equal(true);
        expect(corrupted.stats).to.include({ signatures: 1, invalidSignatures: 1, retries: 1, failedSignatures: 0 });
      } finally {
        await corrupted.close();
      }
    });

    it('fails with hsm.bad_signature when the retry is invalid too', async () => {
      await token.generateKeyPair({ label: 'corrupt-always', keyType: 'P-384' });
      const corrupted = await HsmToken.open({
        modulePath: testToken.modulePath,
        tokenLabel: testToken.label,
        pin: testToken.pin,
        sessions: 1,
        testHooks: { afterSign: (signature) => Buffer.concat([signature.subarray(1), Buffer.from([signature[0] ?? 0])]) },
      });
      try {
        const signer = await HsmSigner.create(corrupted, 'corrupt-always');
        const error = await catchBrokerError(signer.sign(Buffer.from('to be signed')));
        expect(error.code).to.equal('hsm.bad_signature');
        expect(error.kind).to.equal('internal');
        expect(error.logMessage).to.contain('corrupt-always');
        expect(corrupted.stats).to.include({ signatures: 0, invalidSignatures: 2, retries: 1, failedSignatures: 1 });
      } finally {
        await corrupted.close();
      }
    });
  });

  describe('event loop', () => {
    for (const keyType of ['P-256', 'P-384'] as KeyType[]) {
      it(`${keyType} (${keyType === 'P-256' ? 'sync batches' : 'async'}): a timer keeps firing while 500 signatures run`, async () => {
        const label = `loop-${keyType}`;
        await token.generateKeyPair({ label, keyType });
        const signer = await HsmSigner.create(token, label);
        let completed = 0;
        const completedAtTicks: number[] = [];
        const timer = setInterval(() => completedAtTicks.push(completed), 1);
        try {
          const message = Buffer.from('event loop');
          await Promise.all(
            Array.from({ length: 500 }, async () => {
              await signer.sign(message);
              completed++;
            }),
          );
        } finally {
          clearInterval(timer);
        }
        expect(completed).to.equal(500);
        // Ticks observed strictly between the first and the last signature prove the loop turned.
        const during = new Set(completedAtTicks.filter((count) => count > 0 && count < 500));
        expect(during.size, `ticks at ${completedAtTicks.join(',')}`).to.be.at.least(3);
      });
    }
  });

  describe('session loss', () => {
    it('a closed session makes calls fail fast with unavailable, then the token reconnects and signs again', async () => {
      const timers = manualTimers();
      const own = await HsmToken.open({ modulePath: testToken.modulePath, tokenLabel: testToken.label, pin: testToken.pin, sessions: 2, setTimer: timers.setTimer, signMode: 'async' });
      try {
        await own.generateKeyPair({ label: 'loss', keyType: 'P-256' });
        const signer = await HsmSigner.create(own, 'loss');
        await signer.sign(Buffer.from('before'));
        const lost = new Promise<BrokerError>((resolve) => own.once('lost', resolve));
        // Pull the sessions out from under the token, as a device reset would.
        const api = library.api;
        api.C_CloseAllSessions(findTokenByLabel(api, testToken.label).slot);
        const error = await catchBrokerError(signer.sign(Buffer.from('during')));
        expect(error.code).to.equal('hsm.session_lost');
        expect(error.kind).to.equal('unavailable');
        expect((await lost).code).to.equal('hsm.session_lost');
        expect(own.state).to.equal('reconnecting');
        // While reconnecting, calls fail at once without touching the HSM.
        expect((await catchBrokerError(signer.sign(Buffer.from('still down')))).kind).to.equal('unavailable');
        expect(timers.delays).to.deep.equal([100]);
        const reconnected = new Promise<void>((resolve) => own.once('reconnected', resolve));
        timers.pending.shift()!();
        await reconnected;
        expect(own.state).to.equal('open');
        const message = Buffer.from('after');
        expect(verifySignature('ES256', signer.publicKey, message, await signer.sign(message))).to.equal(true);
        expect(own.stats).to.include({ sessionLosses: 1, reconnects: 1 });
      } finally {
        await own.close();
      }
    });
  });
});
