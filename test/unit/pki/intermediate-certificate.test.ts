import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SoftwareSigner } from '../../../src/core/index.js';
import {
  ExtensionOid,
  INTERMEDIATE_PATH_LENGTH,
  createIntermediateCertificate,
  decodeGeneralNames,
  decodeNameConstraints,
  fieldsOf,
  keyIdentifierOf,
  type IntermediateCertificateRequest,
} from '../../../src/pki/index.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import {
  webcrypto,
  INTERMEDIATE_NOT_AFTER,
  INTERMEDIATE_NOT_BEFORE,
  ROOT_NOT_AFTER,
  TRUST_DOMAIN,
  createTestPki,
  expectBrokerError,
  extensionOf,
  type TestPki,
} from './pki-fixtures.js';


describe('pki/intermediate-certificate', () => {
  let pki: TestPki;

  before(async () => {
    pki = await createTestPki('intermediate');
  });

  function request(overrides: Partial<IntermediateCertificateRequest> = {}): IntermediateCertificateRequest {
    return {
      issuerSigner: pki.rootSigner,
      issuerCertificate: pki.root,
      publicKey: pki.intermediateSigner.publicKey,
      subject: 'CN=credbroker test intermediate,O=credbroker',
      trustDomain: TRUST_DOMAIN,
      notBefore: INTERMEDIATE_NOT_BEFORE,
      notAfter: INTERMEDIATE_NOT_AFTER,
      random: new SeededRandom('i'),
      ...overrides,
    };
  }

  it('is signed by the root: issuer bytes = root subject bytes, signature verifies with the root key', async () => {
    const { intermediate, root } = pki;
    expect(Buffer.from(fieldsOf(intermediate).issuerRaw).equals(fieldsOf(root).subjectRaw)).to.equal(true);
    expect(await intermediate.verify({ publicKey: root.publicKey, signatureOnly: true }, webcrypto)).to.equal(true);
    expect(intermediate.subject).to.equal('CN=credbroker test intermediate, O=credbroker');
    expect(intermediate.notAfter.toISOString()).to.equal(INTERMEDIATE_NOT_AFTER.toISOString());
  });

  it('has CA pathLen 0, keyCertSign|cRLSign (no digitalSignature), critical name constraints, SAN, SKI, AKI = root SKI', () => {
    const { intermediate, root } = pki;
    expect(fieldsOf(intermediate).extensions.map((e) => [e.oid, e.critical])).to.deep.equal([
      [ExtensionOid.basicConstraints, true],
      [ExtensionOid.keyUsage, true],
      [ExtensionOid.nameConstraints, true],
      [ExtensionOid.subjectAltName, false],
      [ExtensionOid.subjectKeyIdentifier, false],
      [ExtensionOid.authorityKeyIdentifier, false],
    ]);
    const constraints = intermediate.getExtension(x509.BasicConstraintsExtension);
    expect([constraints?.ca, constraints?.pathLength]).to.deep.equal([true, INTERMEDIATE_PATH_LENGTH]);
    expect(Buffer.from(extensionOf(intermediate, ExtensionOid.basicConstraints).value).toString('hex')).to.equal('30060101ff020100');
    expect(intermediate.getExtension(x509.KeyUsagesExtension)?.usages).to.equal(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(intermediate.getExtension(x509.ExtendedKeyUsageExtension)).to.equal(null);
    expect(intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).to.equal(keyIdentifierOf(pki.intermediateSigner.publicKey).toString('hex'));
    expect(intermediate.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).to.equal(root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
  });

  it('permits exactly the URI host of the trust domain (known-answer DER)', () => {
    const value = extensionOf(pki.intermediate, ExtensionOid.nameConstraints).value;
    // SEQUENCE { [0] { SEQUENCE { [6] "anonymizer.test" } } }
    expect(Buffer.from(value).toString('hex')).to.equal(`3015a0133011860f${Buffer.from(TRUST_DOMAIN).toString('hex')}`);
    const decoded = decodeNameConstraints(value);
    expect(decoded.permitted.map((n) => [n.kind, n.text])).to.deep.equal([['uniformResourceIdentifier', TRUST_DOMAIN]]);
    expect(decoded.excluded).to.deep.equal([]);
  });

  it('carries its own SPIFFE ID, spiffe://<trust domain> without path, as URI SAN', () => {
    const names = decodeGeneralNames(extensionOf(pki.intermediate, ExtensionOid.subjectAltName).value, 'SAN');
    expect(names.map((n) => [n.kind, n.text])).to.deep.equal([['uniformResourceIdentifier', `spiffe://${TRUST_DOMAIN}`]]);
  });

  it('adds dNSName subtrees for permittedDnsDomains (lowercased)', async () => {
    const certificate = await createIntermediateCertificate(request({ permittedDnsDomains: ['Media.Internal', 'svc.local'] }));
    const decoded = decodeNameConstraints(extensionOf(certificate, ExtensionOid.nameConstraints).value);
    expect(decoded.permitted.map((n) => [n.kind, n.text])).to.deep.equal([
      ['uniformResourceIdentifier', TRUST_DOMAIN],
      ['dNSName', 'media.internal'],
      ['dNSName', 'svc.local'],
    ]);
  });

  it('accepts every CA key type as the intermediate key', async () => {
    for (const keyType of ['P-384', 'Ed25519'] as const) {
      const key = await SoftwareSigner.generate(keyType);
      const certificate = await createIntermediateCertificate(request({ publicKey: key.publicKey }));
      expect(await certificate.verify({ publicKey: pki.root.publicKey, signatureOnly: true }, webcrypto)).to.equal(true);
    }
  });

  it('refuses a notAfter beyond the issuer notAfter as invalid pki.validity, saying by how much', async () => {
    const notAfter = new Date(ROOT_NOT_AFTER.getTime() + 3_600_000);
    await expectBrokerError(() => createIntermediateCertificate(request({ notAfter })), 'invalid', 'pki.validity', /is 1h after its issuer's \(2036-01-01T00:00:00.000Z\)/);
    // Exactly the issuer's notAfter is fine.
    await createIntermediateCertificate(request({ notAfter: ROOT_NOT_AFTER }));
  });

  it('refuses bad input, naming what is wrong', async () => {
    await expectBrokerError(() => createIntermediateCertificate(request({ trustDomain: 'Bad.Domain' })), 'invalid', 'pki.trust_domain', /uppercase/);
    await expectBrokerError(() => createIntermediateCertificate(request({ subject: '' })), 'invalid', 'pki.subject', /intermediate subject/);
    await expectBrokerError(() => createIntermediateCertificate(request({ notAfter: INTERMEDIATE_NOT_BEFORE })), 'invalid', 'pki.validity');
    await expectBrokerError(() => createIntermediateCertificate(request({ permittedDnsDomains: ['*.media.internal'] })), 'invalid', 'pki.dns_name', /wildcard/);
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    await expectBrokerError(() => createIntermediateCertificate(request({ publicKey: k1.publicKey })), 'invalid', 'pki.key_type', /EC secp256k1/);
    await expectBrokerError(() => createIntermediateCertificate(request({ publicKey: k1.privateKey })), 'invalid', 'pki.key_type', /public key only/);
  });

  it('refuses an issuer that does not fit as internal errors (configuration, not caller input)', async () => {
    // The root certificate with the intermediate's key.
    await expectBrokerError(() => createIntermediateCertificate(request({ issuerSigner: pki.intermediateSigner })), 'internal', 'pki.issuer_key_mismatch');
    // The intermediate (pathLen 0) cannot sign another CA.
    await expectBrokerError(
      () => createIntermediateCertificate(request({ issuerSigner: pki.intermediateSigner, issuerCertificate: pki.intermediate, notAfter: INTERMEDIATE_NOT_AFTER })),
      'internal',
      'pki.issuer_path_length',
    );
  });
});
