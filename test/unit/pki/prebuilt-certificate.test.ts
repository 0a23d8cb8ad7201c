import { expect } from 'chai';
import { createPublicKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SoftwareSigner } from '../../../src/core/index.js';
import { ExtensionOid, encodeGeneralNames, issueLeafCertificate, parseSpiffeId, verifyChain } from '../../../src/pki/index.js';
import { PrebuiltCertificate, PrebuiltPublicKey } from '../../../src/pki/prebuilt-certificate.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { NOW, TRUST_DOMAIN, checkedCsrFor, createTestPki, privateKey, webcrypto, type TestPki } from './pki-fixtures.js';

/** Every public view of a certificate that callers might use, in comparable form. */
async function views(certificate: x509.X509Certificate): Promise<Record<string, unknown>> {
  return {
    rawData: Buffer.from(certificate.rawData).toString('hex'),
    pem: certificate.toString('pem'),
    base64: certificate.toString('base64'),
    text: certificate.toString('text'),
    serialNumber: certificate.serialNumber,
    subject: certificate.subject,
    issuer: certificate.issuer,
    subjectName: certificate.subjectName.toString(),
    issuerName: certificate.issuerName.toString(),
    notBefore: certificate.notBefore.toISOString(),
    notAfter: certificate.notAfter.toISOString(),
    signatureAlgorithm: certificate.signatureAlgorithm,
    signature: Buffer.from(certificate.signature).toString('hex'),
    tbs: Buffer.from((certificate as unknown as { tbs: ArrayBuffer }).tbs).toString('hex'),
    publicKey: Buffer.from(certificate.publicKey.rawData).toString('hex'),
    publicKeyPem: certificate.publicKey.toString('pem'),
    publicKeyAlgorithm: certificate.publicKey.algorithm,
    publicKeyThumbprint: Buffer.from(await certificate.publicKey.getThumbprint('SHA-256', webcrypto)).toString('hex'),
    extensions: certificate.extensions.map((extension) => [extension.type, extension.critical, Buffer.from(extension.value).toString('hex')]),
    san: certificate.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON(),
    keyUsage: certificate.getExtension(x509.KeyUsagesExtension)?.usages,
    thumbprint: Buffer.from(await certificate.getThumbprint('SHA-256', webcrypto)).toString('hex'),
    selfSigned: await certificate.isSelfSigned(webcrypto),
  };
}

describe('pki/prebuilt-certificate', () => {
  let pki: TestPki;

  before(async () => {
    pki = await createTestPki('prebuilt');
  });

  for (const kind of ['P-256', 'P-384', 'Ed25519', 'RSA-2048'] as const) {
    it(`a ${kind} leaf from the fast path looks exactly like the library's parse of its DER`, async () => {
      const csr = await checkedCsrFor(privateKey(kind), {
        extensions: [{ oid: ExtensionOid.subjectAltName, value: encodeGeneralNames([{ kind: 'dNSName', text: 'blur.media.internal' }]) }],
      });
      const leaf = await issueLeafCertificate({
        issuerSigner: pki.intermediateSigner,
        issuerCertificate: pki.intermediate,
        csr,
        spiffeId: parseSpiffeId(`spiffe://${TRUST_DOMAIN}/media/blur`),
        profile: 'service',
        allowedDnsNames: ['*.media.internal'],
        now: NOW,
        random: new SeededRandom(`prebuilt-${kind}`),
      });
      expect(leaf).to.be.instanceOf(PrebuiltCertificate);
      expect(leaf).to.be.instanceOf(x509.X509Certificate);
      const parsed = new x509.X509Certificate(leaf.rawData);
      expect(await views(leaf)).to.deep.equal(await views(parsed));
      expect(leaf.equal(parsed)).to.equal(true);
      expect(parsed.equal(leaf)).to.equal(true);
      expect(await leaf.verify({ publicKey: pki.intermediate.publicKey, signatureOnly: true }, webcrypto)).to.equal(true);
      // The public key works as the library's (export to WebCrypto uses its algorithm).
      const exported = (await leaf.publicKey.export(webcrypto)) as unknown as { type: string };
      expect(exported.type).to.equal('public');
      await verifyChain([leaf, pki.intermediate, pki.root], [pki.root], NOW, { purpose: 'serverAuth' });
    });
  }

  it('answers DER, PEM, serial, validity and public key without parsing the certificate', async () => {
    const leaf = await issueLeafCertificate({
      issuerSigner: pki.intermediateSigner,
      issuerCertificate: pki.intermediate,
      csr: await checkedCsrFor(),
      spiffeId: parseSpiffeId(`spiffe://${TRUST_DOMAIN}/media/blur`),
      profile: 'service',
      now: NOW,
      random: new SeededRandom('no-parse'),
    });
    // Every parse constructs a library object, which calls its onInit: count those.
    type WithOnInit = { onInit(this: object, asn: unknown): void };
    const prototypes = [x509.X509Certificate.prototype, x509.PublicKey.prototype] as unknown as WithOnInit[];
    const originals = prototypes.map((prototype) => Reflect.get<WithOnInit, 'onInit'>(prototype, 'onInit'));
    let parses = 0;
    prototypes.forEach((prototype, i) => {
      prototype.onInit = function (this: object, asn: unknown) {
        if (Object.getPrototypeOf(this) === prototype) parses++;
        originals[i]!.call(this, asn);
      };
    });
    try {
      expect(leaf.toString('pem')).to.match(/^-----BEGIN CERTIFICATE-----/);
      expect(leaf.serialNumber).to.match(/^[0-7][0-9a-f]{31}$/);
      expect(leaf.notAfter.getTime() - leaf.notBefore.getTime()).to.equal(61 * 60_000);
      expect(leaf.publicKey.rawData.byteLength).to.equal(91);
      expect(leaf.rawData.byteLength).to.be.greaterThan(300);
      expect(parses).to.equal(0);
      expect(leaf.subject).to.equal('');
      expect(parses, 'anything else parses, once').to.equal(1);
      expect([leaf.issuer, leaf.extensions.length, leaf.signatureAlgorithm.hash]).to.deep.equal(['CN=credbroker test intermediate, O=credbroker', 6, { name: 'SHA-256' }]);
      expect(parses).to.equal(1);
    } finally {
      prototypes.forEach((prototype, i) => {
        prototype.onInit = originals[i]!;
      });
    }
  });

  it('copies the DER: changing the input later changes nothing', () => {
    const der = Uint8Array.from(new Uint8Array(pki.intermediate.rawData));
    const fields = { serialNumber: pki.intermediate.serialNumber, notBefore: pki.intermediate.notBefore, notAfter: pki.intermediate.notAfter, spki: new Uint8Array(pki.intermediate.publicKey.rawData) };
    const prebuilt = new PrebuiltCertificate(der, fields);
    der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0xff;
    expect(Buffer.from(prebuilt.rawData).equals(Buffer.from(pki.intermediate.rawData))).to.equal(true);
    expect(prebuilt.subject).to.equal(pki.intermediate.subject);
  });

  it('a PrebuiltPublicKey is the library PublicKey of the same SPKI', async () => {
    for (const key of [(await SoftwareSigner.generate('RSA-3072')).publicKey, createPublicKey(privateKey('Ed25519'))]) {
      const spki = key.export({ format: 'der', type: 'spki' });
      const prebuilt = new PrebuiltPublicKey(spki);
      const parsed = new x509.PublicKey(spki);
      expect(prebuilt).to.be.instanceOf(x509.PublicKey);
      expect(prebuilt.algorithm).to.deep.equal(parsed.algorithm);
      expect(prebuilt.toString('pem')).to.equal(parsed.toString('pem'));
      expect(Buffer.from(await prebuilt.getKeyIdentifier(webcrypto)).toString('hex')).to.equal(Buffer.from(await parsed.getKeyIdentifier(webcrypto)).toString('hex'));
    }
  });
});
