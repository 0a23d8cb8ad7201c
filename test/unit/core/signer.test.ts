import { expect } from 'chai';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import {
  KEY_TYPES,
  SoftwareSigner,
  ecdsaDerToRaw,
  ecdsaRawToDer,
  keyTypeOf,
  publicKeyFromSpki,
  spkiOf,
  verifySignature,
  verifySignatureAsync,
  type SignatureAlgorithm,
} from '../../../src/core/index.js';

describe('core/signer', () => {
  describe('SoftwareSigner', () => {
    for (const keyType of KEY_TYPES) {
      it(`${keyType}: signs in the Signer encoding; the signature verifies only over its message`, async () => {
        const signer = await SoftwareSigner.generate(keyType);
        expect(signer.keyType).to.equal(keyType);
        const message = Buffer.from(`message for ${keyType}`);
        const signature = await signer.sign(message);
        const expectedLength = { 'P-256': 64, 'P-384': 96, 'RSA-3072': 384, Ed25519: 64 }[keyType];
        expect(signature.length).to.equal(expectedLength);
        expect(verifySignature(signer.algorithm, signer.publicKey, message, signature)).to.equal(true);
        expect(await verifySignatureAsync(signer.algorithm, signer.publicKey, message, signature)).to.equal(true);
        const other = Buffer.from(message);
        other[0] = (other[0] ?? 0) ^ 1;
        expect(verifySignature(signer.algorithm, signer.publicKey, other, signature)).to.equal(false);
        expect(await verifySignatureAsync(signer.algorithm, signer.publicKey, other, signature)).to.equal(false);
      });
    }

    it('refuses a key type credbroker does not use', async () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
      let error: unknown;
      try {
        await SoftwareSigner.fromPrivateKey(privateKey);
      } catch (caught) {
        error = caught;
      }
      expect(error).to.be.instanceOf(RangeError);
    });
  });

  describe('verifySignature', () => {
    it('returns false (never throws) for malformed signatures', async () => {
      const signer = await SoftwareSigner.generate('P-256');
      for (const bad of [new Uint8Array(0), new Uint8Array(63), new Uint8Array(200)]) {
        expect(verifySignature('ES256', signer.publicKey, Buffer.from('x'), bad)).to.equal(false);
        expect(await verifySignatureAsync('ES256', signer.publicKey, Buffer.from('x'), bad)).to.equal(false);
      }
    });
  });

  describe('ECDSA encodings (PKCS#11 r||s vs X.509 DER)', () => {
    for (const [algorithm, curve, digest] of [
      ['ES256', 'P-256', 'sha256'],
      ['ES384', 'P-384', 'sha384'],
    ] as [SignatureAlgorithm, string, string][]) {
      it(`${algorithm}: raw -> DER -> raw round trips and matches node's own DER signatures`, () => {
        const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
        for (let i = 0; i < 200; i++) {
          const message = Buffer.from(`message ${i}`);
          const der = cryptoSign(digest, message, { key: privateKey, dsaEncoding: 'der' });
          const raw = ecdsaDerToRaw(der, algorithm);
          expect(raw.length).to.equal(algorithm === 'ES256' ? 64 : 96);
          expect(ecdsaRawToDer(raw, algorithm).equals(der), `DER of signature ${i}`).to.equal(true);
          expect(verifySignature(algorithm, publicKey, message, raw)).to.equal(true);
        }
      });
    }

    it('encodes high-bit and leading-zero integers as minimal positive DER INTEGERs', () => {
      const raw = Buffer.alloc(64);
      raw[0] = 0x80; // r: high bit set -> needs a 0x00 pad
      raw[63] = 0x01; // s: 31 leading zero bytes -> a single byte
      const der = ecdsaRawToDer(raw, 'ES256');
      expect(der.toString('hex')).to.equal(`302602210080${'00'.repeat(31)}020101`);
      expect(ecdsaDerToRaw(der, 'ES256').equals(raw)).to.equal(true);
    });

    it('refuses wrong lengths, trailing bytes, negative and oversized integers', () => {
      expect(() => ecdsaRawToDer(new Uint8Array(63), 'ES256')).to.throw(RangeError);
      expect(() => ecdsaRawToDer(new Uint8Array(64), 'RS256')).to.throw(RangeError);
      expect(() => ecdsaDerToRaw(Buffer.from('3006020101020101ff', 'hex'), 'ES256')).to.throw(RangeError); // trailing
      expect(() => ecdsaDerToRaw(Buffer.from('300602018102010a', 'hex'), 'ES256')).to.throw(RangeError); // negative r
      expect(() => ecdsaDerToRaw(Buffer.concat([Buffer.from('3025022101', 'hex'), Buffer.alloc(32, 1), Buffer.from('020101', 'hex')]), 'ES256')).to.throw(RangeError);
      expect(() => ecdsaDerToRaw(Buffer.from('3008020101', 'hex'), 'ES256')).to.throw(RangeError); // truncated
    });
  });

  describe('public keys', () => {
    it('SPKI round trip and key type detection', async () => {
      for (const keyType of KEY_TYPES) {
        const signer = await SoftwareSigner.generate(keyType);
        const again = publicKeyFromSpki(spkiOf(signer.publicKey));
        expect(keyTypeOf(again)).to.equal(keyType);
        expect(spkiOf(again).equals(spkiOf(signer.publicKey))).to.equal(true);
      }
      expect(keyTypeOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey)).to.equal(null);
    });
  });
});
