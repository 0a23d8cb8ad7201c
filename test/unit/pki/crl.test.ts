import { expect } from 'chai';
import type { webcrypto as NodeWebCrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { DAY_MS, SoftwareSigner, type KeyType } from '../../../src/core/index.js';
import {
  ExtensionOid,
  MAX_CRL_NUMBER,
  buildCrl,
  createRootCertificate,
  crlToPem,
  fieldsOf,
  type CrlRequest,
} from '../../../src/pki/index.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { ROOT_NOT_AFTER, ROOT_NOT_BEFORE, createTestPki, expectBrokerError, webcrypto, type TestPki } from './pki-fixtures.js';

const THIS_UPDATE = new Date('2026-03-01T12:00:00Z');
const NEXT_UPDATE = new Date(THIS_UPDATE.getTime() + DAY_MS);

/** Verifies a CRL's signature with @peculiar/webcrypto (independent of the code under test). */
async function signedBy(crl: x509.X509Crl, issuer: x509.X509Certificate): Promise<boolean> {
  const publicKey = (await issuer.publicKey.export(webcrypto)) as unknown as NodeWebCrypto.CryptoKey;
  return crl.verify({ publicKey }, webcrypto);
}

describe('pki/crl', () => {
  let pki: TestPki;
  let crl: x509.X509Crl;

  before(async () => {
    pki = await createTestPki('crl');
    crl = await buildCrl(request());
  });

  function request(overrides: Partial<CrlRequest> = {}): CrlRequest {
    return {
      issuerSigner: pki.intermediateSigner,
      issuerCertificate: pki.intermediate,
      crlNumber: 7n,
      thisUpdate: THIS_UPDATE,
      nextUpdate: NEXT_UPDATE,
      entries: [
        { serialNumber: '1a2b3c4d5e6f708192a3b4c5d6e7f801', revokedAt: new Date('2026-03-01T10:00:00Z'), reason: 'keyCompromise' },
        { serialNumber: '0102', revokedAt: new Date('2026-03-01T10:30:00Z'), reason: 'unspecified' },
        { serialNumber: '7F00', revokedAt: new Date('2026-03-01T11:00:00Z'), reason: 'superseded' },
        { serialNumber: '33', revokedAt: new Date('2026-03-01T11:30:00Z'), reason: 'certificateHold' },
      ],
      ...overrides,
    };
  }

  it('is a v2 CRL of the intermediate, signed by its key, with this/next update', async () => {
    expect(crl.version).to.equal(1); // v2
    expect(Buffer.from(crl.issuerName.toArrayBuffer()).equals(fieldsOf(pki.intermediate).subjectRaw)).to.equal(true);
    expect(crl.thisUpdate.toISOString()).to.equal(THIS_UPDATE.toISOString());
    expect(crl.nextUpdate?.toISOString()).to.equal(NEXT_UPDATE.toISOString());
    expect(await signedBy(crl, pki.intermediate)).to.equal(true);
    expect(await signedBy(crl, pki.root)).to.equal(false);
  });

  it('has the cRLNumber and authorityKeyIdentifier (= issuer SKI) extensions, not critical', () => {
    const extensions = crl.extensions.map((e) => [e.type, e.critical]);
    expect(extensions).to.deep.equal([
      [ExtensionOid.authorityKeyIdentifier, false],
      [ExtensionOid.crlNumber, false],
    ]);
    const number = crl.getExtension(ExtensionOid.crlNumber);
    expect(Buffer.from(number?.value ?? new ArrayBuffer(0)).toString('hex')).to.equal('020107');
    const aki = new x509.AuthorityKeyIdentifierExtension(crl.getExtension(ExtensionOid.authorityKeyIdentifier)?.rawData ?? new ArrayBuffer(0));
    expect(aki.keyId).to.equal(pki.intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
  });

  it('lists every entry in order with its date and reason; unspecified has no reasonCode and no empty extensions', () => {
    expect(crl.entries.map((e) => [e.serialNumber, e.revocationDate.toISOString(), e.reason])).to.deep.equal([
      ['1a2b3c4d5e6f708192a3b4c5d6e7f801', '2026-03-01T10:00:00.000Z', x509.X509CrlReason.keyCompromise],
      ['0102', '2026-03-01T10:30:00.000Z', undefined],
      ['7f00', '2026-03-01T11:00:00.000Z', x509.X509CrlReason.superseded],
      ['33', '2026-03-01T11:30:00.000Z', x509.X509CrlReason.certificateHold],
    ]);
    const unspecified = crl.entries[1];
    expect(unspecified?.extensions).to.deep.equal([]);
    // SEQUENCE { INTEGER 0102, UTCTime }: no crlEntryExtensions at all (RFC 5280: SIZE (1..MAX)).
    const utcTime = Buffer.from('260301103000Z').toString('hex');
    expect(Buffer.from(unspecified?.rawData ?? new ArrayBuffer(0)).toString('hex')).to.equal(`301302020102170d${utcTime}`);
    expect(crl.findRevoked('1a2b3c4d5e6f708192a3b4c5d6e7f801')?.reason).to.equal(x509.X509CrlReason.keyCompromise);
  });

  it('omits revokedCertificates when there are no entries, and takes the largest CRL number', async () => {
    const empty = await buildCrl(request({ entries: [], crlNumber: MAX_CRL_NUMBER }));
    expect(empty.entries).to.deep.equal([]);
    expect(await signedBy(empty, pki.intermediate)).to.equal(true);
    const value = Buffer.from(empty.getExtension(ExtensionOid.crlNumber)?.value ?? new ArrayBuffer(0));
    expect(value.length).to.equal(22); // INTEGER of 20 octets
  });

  it('writes PEM with the RFC 7468 label X509 CRL (toString and crlToPem), which reads back', () => {
    for (const pem of [crl.toString('pem'), crl.toString(), crlToPem(crl), crlToPem(new x509.X509Crl(crl.rawData))]) {
      expect(pem).to.match(/^-----BEGIN X509 CRL-----\r?\n/);
      expect(pem).to.match(/-----END X509 CRL-----$/);
      expect(Buffer.from(new x509.X509Crl(pem).rawData).equals(Buffer.from(crl.rawData))).to.equal(true);
    }
  });

  for (const keyType of ['RSA-3072', 'Ed25519', 'P-384'] as KeyType[]) {
    it(`is signed correctly by a ${keyType} CA`, async () => {
      const signer = await SoftwareSigner.generate(keyType);
      const root = await createRootCertificate({ signer, subject: `CN=${keyType} root`, notBefore: ROOT_NOT_BEFORE, notAfter: ROOT_NOT_AFTER, random: new SeededRandom(keyType) });
      const signed = await buildCrl(request({ issuerSigner: signer, issuerCertificate: root }));
      expect(await signedBy(signed, root)).to.equal(true);
    });
  }

  describe('refuses', () => {
    const cases: { name: string; overrides: Partial<CrlRequest>; code: string; message: RegExp }[] = [
      { name: 'CRL number 0', overrides: { crlNumber: 0n }, code: 'pki.crl_number', message: /positive integer of at most 20 bytes, got 0/ },
      { name: 'a negative CRL number', overrides: { crlNumber: -1n }, code: 'pki.crl_number', message: /got -1/ },
      { name: 'a CRL number above 20 bytes', overrides: { crlNumber: MAX_CRL_NUMBER + 1n }, code: 'pki.crl_number', message: /at most 20 bytes/ },
      { name: 'a number instead of a bigint', overrides: { crlNumber: 5 as unknown as bigint }, code: 'pki.crl_number', message: /got 5/ },
      { name: 'nextUpdate = thisUpdate', overrides: { nextUpdate: THIS_UPDATE }, code: 'pki.crl_validity', message: /must be after thisUpdate/ },
      { name: 'an invalid date', overrides: { thisUpdate: new Date('x') }, code: 'pki.crl_validity', message: /valid dates/ },
      { name: 'a serial that is not hex', overrides: { entries: [{ serialNumber: 'xyz', revokedAt: THIS_UPDATE, reason: 'superseded' }] }, code: 'pki.serial', message: /"xyz" is not a certificate serial number/ },
      { name: 'a serial of odd length', overrides: { entries: [{ serialNumber: '123', revokedAt: THIS_UPDATE, reason: 'superseded' }] }, code: 'pki.serial', message: /"123"/ },
      { name: 'a serial above 20 bytes', overrides: { entries: [{ serialNumber: 'ab'.repeat(21), revokedAt: THIS_UPDATE, reason: 'superseded' }] }, code: 'pki.serial', message: /1–20 bytes/ },
      { name: 'serial zero', overrides: { entries: [{ serialNumber: '00', revokedAt: THIS_UPDATE, reason: 'superseded' }] }, code: 'pki.serial', message: /not zero/ },
      {
        name: 'a serial listed twice (any case)',
        overrides: { entries: [{ serialNumber: 'AB01', revokedAt: THIS_UPDATE, reason: 'superseded' }, { serialNumber: 'ab01', revokedAt: THIS_UPDATE, reason: 'keyCompromise' }] },
        code: 'pki.crl_duplicate',
        message: /serial ab01 is listed twice/,
      },
      { name: 'an unknown reason', overrides: { entries: [{ serialNumber: '01', revokedAt: THIS_UPDATE, reason: 'removeFromCRL' as never }] }, code: 'pki.revocation_reason', message: /unknown revocation reason "removeFromCRL"/ },
      { name: 'an invalid revocation date', overrides: { entries: [{ serialNumber: '01', revokedAt: new Date(Number.NaN), reason: 'superseded' }] }, code: 'pki.revocation_date', message: /serial 01/ },
    ];
    for (const c of cases) {
      it(`${c.name} as invalid ${c.code}`, async () => {
        await expectBrokerError(() => buildCrl(request(c.overrides)), 'invalid', c.code, c.message);
      });
    }

    it('a signer that does not hold the issuer key, as internal', async () => {
      await expectBrokerError(() => buildCrl(request({ issuerSigner: pki.rootSigner })), 'internal', 'pki.issuer_key_mismatch');
    });
  });
});
