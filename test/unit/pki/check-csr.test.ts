import { expect } from 'chai';
import type { KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { BrokerError } from '../../../src/core/index.js';
import {
  CsrAttributeOid,
  ExtendedKeyUsageOid,
  ExtensionOid,
  MAX_CSR_BYTES,
  SignatureAlgorithmOid,
  checkCsr,
  derBitString,
  derBoolean,
  derInteger,
  derNamedBits,
  derOctetString,
  derOid,
  derSequence,
  derTlv,
  encodeGeneralNames,
  parseSignedData,
  type EncodableName,
} from '../../../src/pki/index.js';
import { buildCsr, csrPem, type CsrExtension } from '../../helpers/csr-builder.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { createTestPki, expectBrokerError, privateKey, webcrypto } from './pki-fixtures.js';

const san = (...names: EncodableName[]): readonly CsrExtension[] => [{ oid: ExtensionOid.subjectAltName, value: encodeGeneralNames(names) }];
const keyUsage = (...bits: number[]): Uint8Array => derNamedBits(bits);

describe('pki/check-csr', () => {
  let p256: KeyObject;
  let good: Buffer;

  before(() => {
    p256 = privateKey('P-256');
    good = buildCsr(p256);
  });

  describe('accepts', () => {
    for (const kind of ['P-256', 'P-384', 'Ed25519', 'RSA-2048'] as const) {
      it(`a ${kind} CSR, as DER, PEM text and PEM bytes`, async () => {
        const key = privateKey(kind);
        const der = buildCsr(key);
        for (const input of [der, csrPem(der), Buffer.from(csrPem(der))]) {
          const checked = await checkCsr(input);
          expect(checked.keyType).to.equal(kind === 'RSA-2048' ? 'RSA' : kind);
          expect(checked.publicKey.equals(key)).to.equal(false); // a public key, not the private one
          expect(checked.publicKey.type).to.equal('public');
          expect(Buffer.from(checked.der).equals(der)).to.equal(true);
        }
      });
    }

    it('harmless requests, reporting the requested SANs (lowercased, deduplicated) and ignoring the rest', async () => {
      const checked = await checkCsr(
        buildCsr(p256, {
          extensions: [
            {
              oid: ExtensionOid.subjectAltName,
              value: encodeGeneralNames([
                { kind: 'uniformResourceIdentifier', text: 'spiffe://anonymizer.test/media/blur' },
                { kind: 'dNSName', text: 'Blur.Media.Internal' },
                { kind: 'dNSName', text: 'blur.media.internal' },
                { kind: 'iPAddress', address: Buffer.from([10, 0, 0, 1]) },
                { kind: 'iPAddress', address: Buffer.from('fd000000000000000000000000000001', 'hex') },
              ]),
            },
            { oid: ExtensionOid.keyUsage, critical: true, value: keyUsage(0, 2, 4) },
            { oid: ExtensionOid.extKeyUsage, value: derSequence(derOid(ExtendedKeyUsageOid.serverAuth), derOid(ExtendedKeyUsageOid.clientAuth)) },
            { oid: ExtensionOid.basicConstraints, critical: true, value: derSequence() },
            { oid: ExtensionOid.subjectKeyIdentifier, value: derOctetString(Buffer.alloc(20, 7)) },
          ],
        }),
      );
      expect(checked.requestedUris).to.deep.equal(['spiffe://anonymizer.test/media/blur']);
      expect(checked.requestedDnsNames).to.deep.equal(['blur.media.internal']);
      expect(checked.requestedIpAddresses).to.deep.equal(['10.0.0.1', 'fd00::1']);
      expect(Object.isFrozen(checked.requestedDnsNames)).to.equal(true);
      expect(Object.isFrozen(checked)).to.equal(true);
    });

    it('a CSR made by @peculiar/x509 (WebCrypto keys), with a SAN', async () => {
      const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
      const csr = await x509.Pkcs10CertificateRequestGenerator.create(
        { name: 'CN=blur', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' }, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'blur.media.internal' }])] },
        webcrypto,
      );
      const checked = await checkCsr(csr.toString('pem'));
      expect(checked.requestedDnsNames).to.deep.equal(['blur.media.internal']);
    });
  });

  describe('refuses as invalid, saying what is wrong', () => {
    const cases: { name: string; input: () => Uint8Array | string; code: string; message: RegExp }[] = [
      {
        name: 'a flipped byte in the signature (no proof of possession)',
        input: () => {
          const der = Buffer.from(good);
          der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01;
          return der;
        },
        code: 'pki.csr_signature',
        message: /signature does not verify with its public key: no proof of possession/,
      },
      {
        name: 'a changed byte in the signed request (the subject)',
        input: () => {
          const der = Buffer.from(good);
          const at = der.indexOf(Buffer.from('test'));
          der[at] = 0x54; // 't' -> 'T'
          return der;
        },
        code: 'pki.csr_signature',
        message: /no proof of possession/,
      },
      {
        name: 'the signature of another key',
        input: () => {
          const mine = parseSignedData(good, 'CSR');
          const other = parseSignedData(buildCsr(privateKey('P-256')), 'CSR');
          return derSequence(mine.tbs, mine.algorithmRaw, derBitString(other.signature));
        },
        code: 'pki.csr_signature',
        message: /no proof of possession/,
      },
      { name: 'basicConstraints cA TRUE', input: () => buildCsr(p256, { extensions: [{ oid: ExtensionOid.basicConstraints, critical: true, value: derSequence(derBoolean(true)) }] }), code: 'pki.csr_ca_requested', message: /cA TRUE/ },
      { name: 'keyUsage keyCertSign', input: () => buildCsr(p256, { extensions: [{ oid: ExtensionOid.keyUsage, value: keyUsage(0, 5) }] }), code: 'pki.csr_ca_requested', message: /keyUsage keyCertSign/ },
      { name: 'keyUsage cRLSign', input: () => buildCsr(p256, { extensions: [{ oid: ExtensionOid.keyUsage, value: keyUsage(6) }] }), code: 'pki.csr_ca_requested', message: /keyUsage cRLSign/ },
      { name: 'keyUsage contentCommitment', input: () => buildCsr(p256, { extensions: [{ oid: ExtensionOid.keyUsage, value: keyUsage(1) }] }), code: 'pki.csr_extension', message: /keyUsage contentCommitment/ },
      { name: 'extKeyUsage codeSigning', input: () => buildCsr(p256, { extensions: [{ oid: ExtensionOid.extKeyUsage, value: derSequence(derOid(ExtendedKeyUsageOid.codeSigning)) }] }), code: 'pki.csr_extension', message: /1\.3\.6\.1\.5\.5\.7\.3\.3 \(codeSigning\)/ },
      { name: 'extKeyUsage anyExtendedKeyUsage', input: () => buildCsr(p256, { extensions: [{ oid: ExtensionOid.extKeyUsage, value: derSequence(derOid(ExtendedKeyUsageOid.anyExtendedKeyUsage)) }] }), code: 'pki.csr_extension', message: /2\.5\.29\.37\.0/ },
      { name: 'an unknown extension OID', input: () => buildCsr(p256, { extensions: [{ oid: '1.3.6.1.4.1.99999.1', value: derTlv(0x05, Buffer.alloc(0)) }] }), code: 'pki.csr_extension', message: /requests extension 1\.3\.6\.1\.4\.1\.99999\.1, which credbroker does not issue/ },
      { name: 'nameConstraints', input: () => buildCsr(p256, { extensions: [{ oid: ExtensionOid.nameConstraints, critical: true, value: derSequence() }] }), code: 'pki.csr_extension', message: /2\.5\.29\.30 \(nameConstraints\)/ },
      { name: 'a malformed keyUsage value', input: () => buildCsr(p256, { extensions: [{ oid: ExtensionOid.keyUsage, value: Buffer.from([0x03, 0x02, 0x09, 0x80]) }] }), code: 'pki.csr_extension', message: /keyUsage\) is malformed/ },
      {
        name: 'an extension requested twice',
        input: () => buildCsr(p256, { extensions: [{ oid: ExtensionOid.keyUsage, value: keyUsage(0) }, { oid: ExtensionOid.keyUsage, value: keyUsage(0) }] }),
        code: 'pki.csr_extension',
        message: /twice/,
      },
      { name: 'a P-192 key', input: () => buildCsr(privateKey('P-192')), code: 'pki.csr_key_type', message: /EC P-192 \(prime192v1\) key is not accepted/ },
      { name: 'a P-521 key', input: () => buildCsr(privateKey('P-521'), { signature: { oid: SignatureAlgorithmOid.ecdsaWithSha512, digest: 'sha512' } }), code: 'pki.csr_key_type', message: /EC P-521 \(secp521r1\) key/ },
      { name: 'a secp256k1 key', input: () => buildCsr(privateKey('secp256k1')), code: 'pki.csr_key_type', message: /EC secp256k1 key/ },
      { name: 'an RSA 1024-bit key', input: () => buildCsr(privateKey('RSA-1024')), code: 'pki.csr_key_type', message: /RSA 1024-bit key is too small: RSA keys need at least 2048 bits/ },
      { name: 'an Ed448 key', input: () => buildCsr(privateKey('Ed448'), { signature: { oid: SignatureAlgorithmOid.ed448, digest: null } }), code: 'pki.csr_key_type', message: /Ed448 key/ },
      { name: 'a SHA-1 signature', input: () => buildCsr(p256, { signature: { oid: SignatureAlgorithmOid.ecdsaWithSha1, digest: 'sha1' } }), code: 'pki.csr_signature_algorithm', message: /weak signature algorithm 1\.2\.840\.10045\.4\.1 \(ecdsaWithSha1\)/ },
      { name: 'an algorithm that does not fit the key', input: () => buildCsr(privateKey('RSA-2048'), { signature: { oid: SignatureAlgorithmOid.ecdsaWithSha256, digest: 'sha256' } }), code: 'pki.csr_signature_algorithm', message: /does not fit its RSA 2048-bit key/ },
      { name: 'RSA-PSS', input: () => buildCsr(privateKey('RSA-2048'), { signature: { oid: SignatureAlgorithmOid.rsassaPss, digest: 'sha256' } }), code: 'pki.csr_signature_algorithm', message: /unsupported signature algorithm 1\.2\.840\.113549\.1\.1\.10/ },
      {
        name: 'a challengePassword attribute',
        input: () => buildCsr(p256, { attributes: [{ oid: CsrAttributeOid.challengePassword, values: [derTlv(0x0c, Buffer.from('pw'))] }] }),
        code: 'pki.csr_attribute',
        message: /attribute 1\.2\.840\.113549\.1\.9\.7 \(challengePassword\)/,
      },
      { name: 'an email SAN', input: () => buildCsr(p256, { extensions: [{ oid: ExtensionOid.subjectAltName, value: derSequence(derTlv(0x81, Buffer.from('a@b.c'))) }] }), code: 'pki.csr_san', message: /rfc822Name SAN/ },
      { name: 'two URI SANs', input: () => buildCsr(p256, { extensions: san({ kind: 'uniformResourceIdentifier', text: 'spiffe://td/a' }, { kind: 'uniformResourceIdentifier', text: 'spiffe://td/b' }) }), code: 'pki.csr_san', message: /more than one URI SAN/ },
      { name: 'a URI SAN that is not a SPIFFE ID', input: () => buildCsr(p256, { extensions: san({ kind: 'uniformResourceIdentifier', text: 'https://blur.media.internal/' }) }), code: 'pki.csr_san', message: /not a valid SPIFFE ID: SPIFFE ID "https:/ },
      { name: 'a malformed DNS SAN', input: () => buildCsr(p256, { extensions: san({ kind: 'dNSName', text: 'blur media' }) }), code: 'pki.csr_san', message: /DNS SAN "blur media" has the invalid label/ },
      { name: 'PKCS#10 version 2', input: () => buildCsr(p256, { version: 1 }), code: 'pki.csr_malformed', message: /version 2 is not PKCS#10 version 1/ },
      { name: 'truncated DER', input: () => good.subarray(0, good.length - 10), code: 'pki.csr_malformed', message: /not a well-formed DER PKCS#10 request/ },
      { name: 'trailing bytes', input: () => Buffer.concat([good, Buffer.from([0])]), code: 'pki.csr_malformed', message: /trailing data/ },
      { name: 'garbage', input: () => new SeededRandom('garbage').bytes(300), code: 'pki.csr_malformed', message: /not a well-formed/ },
      { name: 'empty input', input: () => new Uint8Array(0), code: 'pki.csr_malformed', message: /empty/ },
      { name: 'an indefinite length (BER, not DER)', input: () => Buffer.concat([Buffer.from([0x30, 0x80]), good.subarray(2), Buffer.from([0, 0])]), code: 'pki.csr_malformed', message: /indefinite length/ },
      { name: 'a non-minimal length', input: () => Buffer.concat([Buffer.from([0x30, 0x82, 0x00, good[1] ?? 0]), good.subarray(2)]), code: 'pki.csr_malformed', message: /non-minimal length/ },
      { name: 'oversized DER', input: () => Buffer.alloc(MAX_CSR_BYTES + 1, 0x30), code: 'pki.csr_too_large', message: /16385 bytes; at most 16384/ },
      { name: 'oversized PEM', input: () => `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(3 * MAX_CSR_BYTES)}\n-----END CERTIFICATE REQUEST-----\n`, code: 'pki.csr_too_large', message: /at most 16384 bytes/ },
      { name: 'PEM just above the limit', input: () => csrPem(Buffer.alloc(MAX_CSR_BYTES + 3, 0x30)), code: 'pki.csr_too_large', message: /16387 bytes/ },
      { name: 'a PEM certificate instead of a CSR', input: () => csrPem(good).replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE'), code: 'pki.csr_pem', message: /not a single PEM block/ },
      { name: 'two PEM blocks', input: () => csrPem(good) + csrPem(good), code: 'pki.csr_pem', message: /single PEM block/ },
      { name: 'PEM with bad base64', input: () => csrPem(good).replace(/\n[A-Za-z0-9+/]{4}/, '\n!!!!'), code: 'pki.csr_pem', message: /single PEM block|base64/ },
      { name: 'text that is not PEM', input: () => 'hello', code: 'pki.csr_pem', message: /not a single PEM block/ },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const error = await expectBrokerError(() => checkCsr(c.input()), 'invalid', c.code, c.message);
        expect(error.publicMessage).to.not.equal('internal error');
      });
    }

    it('a certificate given as a CSR (same outer shape, different schema)', async () => {
      const { root } = await createTestPki('csr-cert');
      await expectBrokerError(() => checkCsr(new Uint8Array(root.rawData)), 'invalid', 'pki.csr_malformed');
    });
  });

  it('never crashes on mutated input: every result is a CheckedCsr or an invalid BrokerError', async () => {
    const random = new SeededRandom('mutations');
    const base = buildCsr(p256, { extensions: san({ kind: 'dNSName', text: 'blur.media.internal' }, { kind: 'uniformResourceIdentifier', text: 'spiffe://td/x' }) });
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      const mutated = Buffer.from(base);
      const [position = 0, value = 0, mode = 0] = random.bytes(3);
      const at = (position * 7 + i) % mutated.length;
      if (mode % 3 === 0) mutated[at] = value;
      else if (mode % 3 === 1) mutated[at] = (mutated[at] ?? 0) ^ (1 << (value % 8));
      const input = mode % 3 === 2 ? mutated.subarray(0, at) : mutated;
      try {
        await checkCsr(input);
      } catch (error) {
        expect(error, `mutation ${i}`).to.be.instanceOf(BrokerError);
        expect((error as BrokerError).kind, (error as BrokerError).logMessage).to.equal('invalid');
        refused++;
      }
    }
    expect(refused).to.be.greaterThan(300);
  });

  it('keeps the integer helper honest (sanity of the fixtures)', () => {
    expect(derInteger(0x80).toString('hex')).to.equal('02020080');
  });
});
