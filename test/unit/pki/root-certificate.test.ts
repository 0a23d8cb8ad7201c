import { expect } from 'chai';
import { createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SoftwareSigner, spkiOf, type KeyType } from '../../../src/core/index.js';
import { ExtensionOid, ROOT_PATH_LENGTH, createRootCertificate, fieldsOf, keyIdentifierOf, newSerialNumber } from '../../../src/pki/index.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { ROOT_NOT_AFTER, ROOT_NOT_BEFORE, expectBrokerError, extensionOf, webcrypto } from './pki-fixtures.js';


describe('pki/root-certificate', () => {
  let signer: SoftwareSigner;
  let root: x509.X509Certificate;

  before(async () => {
    signer = await SoftwareSigner.generate('P-384');
    root = await createRootCertificate({
      signer,
      subject: 'CN=credbroker test root,O=credbroker',
      notBefore: ROOT_NOT_BEFORE,
      notAfter: ROOT_NOT_AFTER,
      random: new SeededRandom('root'),
    });
  });

  it('is self-signed by the signer: issuer bytes = subject bytes, signature verifies with its key', async () => {
    const fields = fieldsOf(root);
    expect(Buffer.from(fields.issuerRaw).equals(fields.subjectRaw)).to.equal(true);
    expect(root.subject).to.equal('CN=credbroker test root, O=credbroker');
    expect(Buffer.from(root.publicKey.rawData).equals(spkiOf(signer.publicKey))).to.equal(true);
    expect(await root.verify({ signatureOnly: true }, webcrypto)).to.equal(true);
    expect(root.signatureAlgorithm).to.deep.include({ name: 'ECDSA' });
    expect(root.signatureAlgorithm.hash).to.deep.include({ name: 'SHA-384' });
  });

  it('has the fixed dates and a serial from the random source', () => {
    expect(root.notBefore.toISOString()).to.equal(ROOT_NOT_BEFORE.toISOString());
    expect(root.notAfter.toISOString()).to.equal(ROOT_NOT_AFTER.toISOString());
    expect(root.serialNumber).to.equal(newSerialNumber(new SeededRandom('root')));
  });

  it('has exactly basicConstraints (CA, pathLen 1), keyUsage (keyCertSign, cRLSign), SKI and AKI = SKI', () => {
    expect(fieldsOf(root).extensions.map((e) => [e.oid, e.critical])).to.deep.equal([
      [ExtensionOid.basicConstraints, true],
      [ExtensionOid.keyUsage, true],
      [ExtensionOid.subjectKeyIdentifier, false],
      [ExtensionOid.authorityKeyIdentifier, false],
    ]);
    const constraints = root.getExtension(x509.BasicConstraintsExtension);
    expect(constraints?.ca).to.equal(true);
    expect(constraints?.pathLength).to.equal(ROOT_PATH_LENGTH).and.to.equal(1);
    // DER: SEQUENCE { BOOLEAN TRUE, INTEGER 1 }; keyUsage bits 5 and 6, one unused bit.
    expect(Buffer.from(extensionOf(root, ExtensionOid.basicConstraints).value).toString('hex')).to.equal('30060101ff020101');
    expect(Buffer.from(extensionOf(root, ExtensionOid.keyUsage).value).toString('hex')).to.equal('03020106');
    expect(root.getExtension(x509.KeyUsagesExtension)?.usages).to.equal(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    const ski = root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    const aki = root.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
    expect(ski).to.equal(keyIdentifierOf(signer.publicKey).toString('hex'));
    expect(aki).to.equal(ski);
  });

  it('computes the key identifier as SHA-1 of the subjectPublicKey bits (RFC 5280 method 1), like @peculiar/x509', async () => {
    const expected = Buffer.from(await root.publicKey.getKeyIdentifier(webcrypto)).toString('hex');
    expect(keyIdentifierOf(signer.publicKey).toString('hex')).to.equal(expected);
    // An independent computation: the uncompressed P-384 point is the last 97 bytes of the SPKI.
    const spki = spkiOf(signer.publicKey);
    expect(keyIdentifierOf(spki).toString('hex')).to.equal(createHash('sha1').update(spki.subarray(spki.length - 97)).digest('hex'));
  });

  for (const keyType of ['P-256', 'RSA-3072', 'Ed25519'] as KeyType[]) {
    it(`works with a ${keyType} key`, async () => {
      const other = await SoftwareSigner.generate(keyType);
      const certificate = await createRootCertificate({ signer: other, subject: `CN=root ${keyType}`, notBefore: ROOT_NOT_BEFORE, notAfter: ROOT_NOT_AFTER, random: new SeededRandom(keyType) });
      expect(await certificate.verify({ signatureOnly: true }, webcrypto)).to.equal(true);
    });
  }

  const badSubjects: [string, RegExp][] = [
    ['', /is empty/],
    ['   ', /is empty/],
    ['garbage', /not TYPE=value/],
    ['CN=root,,O=x', /not TYPE=value/],
    ['XX=foo', /attribute type "XX"/],
    ['CN=', /empty CN value/],
    ['C=Germany', /C longer than 2|two-letter/],
    [`CN=${'x'.repeat(65)}`, /CN longer than 64/],
  ];
  for (const [subject, reason] of badSubjects) {
    it(`refuses the subject ${JSON.stringify(subject.slice(0, 30))} (${reason.source})`, async () => {
      await expectBrokerError(
        () => createRootCertificate({ signer, subject, notBefore: ROOT_NOT_BEFORE, notAfter: ROOT_NOT_AFTER, random: new SeededRandom('x') }),
        'invalid',
        'pki.subject',
        reason,
      );
    });
  }

  it('refuses notAfter not after notBefore', async () => {
    await expectBrokerError(
      () => createRootCertificate({ signer, subject: 'CN=r', notBefore: ROOT_NOT_AFTER, notAfter: ROOT_NOT_BEFORE, random: new SeededRandom('x') }),
      'invalid',
      'pki.validity',
      /must be after notBefore/,
    );
  });
});
