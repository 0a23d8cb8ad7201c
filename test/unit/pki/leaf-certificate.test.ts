import { expect } from 'chai';
import * as x509 from '@peculiar/x509';
import { DAY_MS, HOUR_MS, MINUTE_MS, SoftwareSigner } from '../../../src/core/index.js';
import {
  ExtendedKeyUsageOid,
  ExtensionOid,
  createIntermediateCertificate,
  decodeGeneralNames,
  encodeGeneralNames,
  fieldsOf,
  issueLeafCertificate,
  keyIdentifierOf,
  newSerialNumber,
  parseSpiffeId,
  spiffeIdOfCertificate,
  verifyChain,
  type CheckedCsr,
  type LeafRequest,
} from '../../../src/pki/index.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import {
  webcrypto,
  INTERMEDIATE_NOT_BEFORE,
  NOW,
  TRUST_DOMAIN,
  checkedCsrFor,
  createTestPki,
  expectBrokerError,
  extensionOf,
  privateKey,
  type TestPki,
} from './pki-fixtures.js';

const BLUR = `spiffe://${TRUST_DOMAIN}/media/blur`;

/** A CSR requesting the given SANs. */
function sanCsr(names: Parameters<typeof encodeGeneralNames>[0]): Promise<CheckedCsr> {
  return checkedCsrFor(privateKey('P-256'), { extensions: [{ oid: ExtensionOid.subjectAltName, value: encodeGeneralNames(names) }] });
}

function sans(certificate: x509.X509Certificate): string[][] {
  return decodeGeneralNames(extensionOf(certificate, ExtensionOid.subjectAltName).value, 'SAN').map((n) => [n.kind, n.text]);
}

describe('pki/leaf-certificate', () => {
  let pki: TestPki;
  let csr: CheckedCsr;

  before(async () => {
    pki = await createTestPki('leaf');
    csr = await checkedCsrFor();
  });

  function request(overrides: Partial<LeafRequest> = {}): LeafRequest {
    return {
      issuerSigner: pki.intermediateSigner,
      issuerCertificate: pki.intermediate,
      csr,
      spiffeId: parseSpiffeId(BLUR),
      profile: 'service',
      now: NOW,
      random: new SeededRandom('leaf-serial'),
      ...overrides,
    };
  }

  describe('service profile', () => {
    let leaf: x509.X509Certificate;
    before(async () => {
      leaf = await issueLeafCertificate(request());
    });

    it('is signed by the intermediate, certifies the CSR key, chains to the root', async () => {
      expect(await leaf.verify({ publicKey: pki.intermediate.publicKey, signatureOnly: true }, webcrypto)).to.equal(true);
      expect(Buffer.from(fieldsOf(leaf).issuerRaw).equals(fieldsOf(pki.intermediate).subjectRaw)).to.equal(true);
      expect(Buffer.from(leaf.publicKey.rawData).equals(csr.publicKey.export({ format: 'der', type: 'spki' }))).to.equal(true);
      await verifyChain([leaf, pki.intermediate, pki.root], [pki.root], NOW, { purpose: 'serverAuth' });
      await verifyChain([leaf, pki.intermediate, pki.root], [pki.root], NOW, { purpose: 'clientAuth' });
    });

    it('has an empty subject, the SPIFFE ID as its only SAN (critical), and the default validity', () => {
      const fields = fieldsOf(leaf);
      expect(fields.subjectEmpty).to.equal(true);
      expect(Buffer.from(fields.subjectRaw).toString('hex')).to.equal('3000');
      expect(sans(leaf)).to.deep.equal([['uniformResourceIdentifier', BLUR]]);
      expect(spiffeIdOfCertificate(leaf).toString()).to.equal(BLUR);
      // now 12:00:00.250 − 1 min backdate, rounded down; + 1 h default.
      expect(leaf.notBefore.toISOString()).to.equal('2026-03-01T11:59:00.000Z');
      expect(leaf.notAfter.toISOString()).to.equal('2026-03-01T13:00:00.000Z');
      expect(leaf.serialNumber).to.equal(newSerialNumber(new SeededRandom('leaf-serial')));
    });

    it('has exactly: basicConstraints cA FALSE (critical), keyUsage digitalSignature (critical), EKU serverAuth+clientAuth, SKI, AKI, SAN (critical)', () => {
      expect(fieldsOf(leaf).extensions.map((e) => [e.oid, e.critical])).to.deep.equal([
        [ExtensionOid.basicConstraints, true],
        [ExtensionOid.keyUsage, true],
        [ExtensionOid.extKeyUsage, false],
        [ExtensionOid.subjectKeyIdentifier, false],
        [ExtensionOid.authorityKeyIdentifier, false],
        [ExtensionOid.subjectAltName, true],
      ]);
      expect(Buffer.from(extensionOf(leaf, ExtensionOid.basicConstraints).value).toString('hex')).to.equal('3000');
      expect(leaf.getExtension(x509.BasicConstraintsExtension)?.ca).to.equal(false);
      expect(Buffer.from(extensionOf(leaf, ExtensionOid.keyUsage).value).toString('hex')).to.equal('03020780');
      expect(leaf.getExtension(x509.KeyUsagesExtension)?.usages).to.equal(x509.KeyUsageFlags.digitalSignature);
      expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)?.usages).to.deep.equal([ExtendedKeyUsageOid.serverAuth, ExtendedKeyUsageOid.clientAuth]);
      expect(leaf.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).to.equal(keyIdentifierOf(csr.publicKey).toString('hex'));
      expect(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).to.equal(pki.intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    });
  });

  it('operator profile: clientAuth only, refused for serverAuth by verifyChain', async () => {
    const leaf = await issueLeafCertificate(request({ profile: 'operator', spiffeId: parseSpiffeId(`spiffe://${TRUST_DOMAIN}/operator/alice`) }));
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)?.usages).to.deep.equal([ExtendedKeyUsageOid.clientAuth]);
    await verifyChain([leaf, pki.intermediate, pki.root], [pki.root], NOW, { purpose: 'clientAuth' });
    await expectBrokerError(() => verifyChain([leaf, pki.intermediate, pki.root], [pki.root], NOW, { purpose: 'serverAuth' }), 'invalid', 'pki.chain_purpose', /spiffe:\/\/anonymizer.test\/operator\/alice/);
  });

  it('keyEncipherment only for RSA keys; Ed25519 and P-384 keys get digitalSignature only', async () => {
    const rsa = await issueLeafCertificate(request({ csr: await checkedCsrFor(privateKey('RSA-2048')) }));
    expect(rsa.getExtension(x509.KeyUsagesExtension)?.usages).to.equal(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    expect(Buffer.from(extensionOf(rsa, ExtensionOid.keyUsage).value).toString('hex')).to.equal('030205a0');
    for (const kind of ['Ed25519', 'P-384'] as const) {
      const leaf = await issueLeafCertificate(request({ csr: await checkedCsrFor(privateKey(kind)) }));
      expect(leaf.getExtension(x509.KeyUsagesExtension)?.usages, kind).to.equal(x509.KeyUsageFlags.digitalSignature);
    }
  });

  it('adds the DNS and IP SANs policy allows, normalized and deduplicated, after the SPIFFE ID', async () => {
    const leaf = await issueLeafCertificate(
      request({
        csr: await sanCsr([
          { kind: 'uniformResourceIdentifier', text: BLUR },
          { kind: 'dNSName', text: 'Blur.Media.Internal' },
          { kind: 'iPAddress', address: Buffer.from([10, 1, 2, 3]) },
        ]),
        dnsNames: ['blur.media.internal', 'blur-admin.media.internal'],
        ipAddresses: ['10.1.2.3', '::1', 'fd00:0:0::7'],
        allowedDnsNames: ['*.media.internal'],
        allowedIpAddresses: ['10.0.0.0/8', '::1', 'fd00::/8'],
      }),
    );
    expect(sans(leaf)).to.deep.equal([
      ['uniformResourceIdentifier', BLUR],
      ['dNSName', 'blur.media.internal'],
      ['dNSName', 'blur-admin.media.internal'],
      ['iPAddress', '10.1.2.3'],
      ['iPAddress', '::1'],
      ['iPAddress', 'fd00::7'],
    ]);
  });

  describe('refuses, naming what is wrong', () => {
    const cases: { name: string; overrides: () => Promise<Partial<LeafRequest>>; kind: 'invalid' | 'denied' | 'internal'; code: string; message: RegExp }[] = [
      {
        name: 'a CSR DNS SAN that policy does not allow',
        overrides: async () => ({ csr: await sanCsr([{ kind: 'dNSName', text: 'db.payments.internal' }]), allowedDnsNames: ['*.media.internal'] }),
        kind: 'denied',
        code: 'pki.san_not_allowed',
        message: /DNS SAN db\.payments\.internal is not allowed/,
      },
      {
        name: 'a CSR DNS SAN when policy allows none',
        overrides: async () => ({ csr: await sanCsr([{ kind: 'dNSName', text: 'blur.media.internal' }]) }),
        kind: 'denied',
        code: 'pki.san_not_allowed',
        message: /DNS SAN blur\.media\.internal/,
      },
      {
        name: 'a wildcard pattern covers one label only',
        overrides: () => Promise.resolve({ dnsNames: ['a.b.media.internal'], allowedDnsNames: ['*.media.internal'] }),
        kind: 'denied',
        code: 'pki.san_not_allowed',
        message: /a\.b\.media\.internal/,
      },
      {
        name: 'a wildcard pattern does not cover its suffix',
        overrides: () => Promise.resolve({ dnsNames: ['media.internal'], allowedDnsNames: ['*.media.internal'] }),
        kind: 'denied',
        code: 'pki.san_not_allowed',
        message: /DNS SAN media\.internal/,
      },
      {
        name: 'a requested IP that policy does not allow',
        overrides: () => Promise.resolve({ ipAddresses: ['192.168.1.5'], allowedIpAddresses: ['10.0.0.0/8'] }),
        kind: 'denied',
        code: 'pki.san_not_allowed',
        message: /IP SAN 192\.168\.1\.5 is not allowed/,
      },
      {
        name: 'a CSR IP that policy does not allow',
        overrides: async () => ({ csr: await sanCsr([{ kind: 'iPAddress', address: Buffer.from([127, 0, 0, 1]) }]) }),
        kind: 'denied',
        code: 'pki.san_not_allowed',
        message: /IP SAN 127\.0\.0\.1/,
      },
      {
        name: 'a CSR URI SAN other than the authorized SPIFFE ID',
        overrides: async () => ({ csr: await sanCsr([{ kind: 'uniformResourceIdentifier', text: `spiffe://${TRUST_DOMAIN}/admin` }]) }),
        kind: 'denied',
        code: 'pki.san_not_allowed',
        message: /URI SAN spiffe:\/\/anonymizer\.test\/admin, but the caller is authorized for spiffe:\/\/anonymizer\.test\/media\/blur only/,
      },
      {
        name: 'a SPIFFE ID of another trust domain',
        overrides: () => Promise.resolve({ spiffeId: parseSpiffeId('spiffe://payments.test/media/blur') }),
        kind: 'denied',
        code: 'pki.trust_domain_mismatch',
        message: /outside the trust domain this CA issues for \(anonymizer\.test\)/,
      },
      {
        name: 'a SPIFFE ID without path',
        overrides: () => Promise.resolve({ spiffeId: parseSpiffeId(`spiffe://${TRUST_DOMAIN}`) }),
        kind: 'invalid',
        code: 'pki.spiffe_id',
        message: /has no path/,
      },
      {
        name: 'a malformed requested DNS name',
        overrides: () => Promise.resolve({ dnsNames: ['bad_name.media.internal'], allowedDnsNames: ['*.media.internal'] }),
        kind: 'invalid',
        code: 'pki.dns_name',
        message: /invalid label "bad_name"/,
      },
      {
        name: 'a requested wildcard DNS name',
        overrides: () => Promise.resolve({ dnsNames: ['*.media.internal'], allowedDnsNames: ['*.media.internal'] }),
        kind: 'invalid',
        code: 'pki.dns_name',
        message: /wildcard/,
      },
      {
        name: 'a malformed requested IP',
        overrides: () => Promise.resolve({ ipAddresses: ['10.1.2'], allowedIpAddresses: ['10.0.0.0/8'] }),
        kind: 'invalid',
        code: 'pki.ip_address',
        message: /"10\.1\.2" is not an IP address/,
      },
      {
        name: 'a TTL above the cap (not clamped)',
        overrides: () => Promise.resolve({ ttlMs: DAY_MS + 1 }),
        kind: 'invalid',
        code: 'pki.ttl',
        message: /exceeds the maximum of 1d/,
      },
      {
        name: 'a TTL above a lower policy cap',
        overrides: () => Promise.resolve({ ttlMs: 3 * HOUR_MS, validityPolicy: { backdateMs: 0, defaultTtlMs: HOUR_MS, maxTtlMs: 2 * HOUR_MS } }),
        kind: 'invalid',
        code: 'pki.ttl',
        message: /3h exceeds the maximum of 2h/,
      },
      {
        name: 'an unknown profile',
        overrides: () => Promise.resolve({ profile: 'admin' as never }),
        kind: 'invalid',
        code: 'pki.profile',
        message: /unknown certificate profile "admin"/,
      },
      {
        name: 'a policy above the 24 h hard cap (internal)',
        overrides: () => Promise.resolve({ validityPolicy: { backdateMs: 0, defaultTtlMs: HOUR_MS, maxTtlMs: 2 * DAY_MS } }),
        kind: 'internal',
        code: 'pki.validity_policy',
        message: /internal error/,
      },
      {
        name: 'a malformed IP policy entry (internal)',
        overrides: () => Promise.resolve({ ipAddresses: ['10.1.2.3'], allowedIpAddresses: ['10.0.0.1/8'] }),
        kind: 'internal',
        code: 'pki.san_policy',
        message: /internal error/,
      },
      {
        name: 'a signer that does not hold the issuer key (internal)',
        overrides: () => Promise.resolve({ issuerSigner: pki.rootSigner }),
        kind: 'internal',
        code: 'pki.issuer_key_mismatch',
        message: /^internal error$/,
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const overrides = await c.overrides();
        await expectBrokerError(() => issueLeafCertificate(request(overrides)), c.kind, c.code, c.message);
      });
    }
  });

  it('clips notAfter to the issuer notAfter', async () => {
    const issuerSigner = await SoftwareSigner.generate('P-256');
    const shortLived = await createIntermediateCertificate({
      issuerSigner: pki.rootSigner,
      issuerCertificate: pki.root,
      publicKey: issuerSigner.publicKey,
      subject: 'CN=short-lived intermediate',
      trustDomain: TRUST_DOMAIN,
      notBefore: INTERMEDIATE_NOT_BEFORE,
      notAfter: new Date(NOW.getTime() + 20 * MINUTE_MS),
      random: new SeededRandom('short'),
    });
    const leaf = await issueLeafCertificate(request({ issuerSigner, issuerCertificate: shortLived, ttlMs: 10 * HOUR_MS }));
    expect(leaf.notAfter.toISOString()).to.equal('2026-03-01T12:20:00.000Z');
    await expectBrokerError(
      () => issueLeafCertificate(request({ issuerSigner, issuerCertificate: shortLived, now: new Date('2026-03-01T12:30:00Z') })),
      'conflict',
      'pki.issuer_expired',
    );
  });

  it('refuses names outside the issuer name constraints even when policy allows them', async () => {
    const constrained = await createTestPki('constrained', { permittedDnsDomains: ['media.internal'] });
    const ok = await issueLeafCertificate(
      request({ issuerSigner: constrained.intermediateSigner, issuerCertificate: constrained.intermediate, dnsNames: ['blur.media.internal'], allowedDnsNames: ['*.media.internal', '*.other.internal'] }),
    );
    expect(sans(ok)).to.deep.include(['dNSName', 'blur.media.internal']);
    await expectBrokerError(
      () =>
        issueLeafCertificate(
          request({ issuerSigner: constrained.intermediateSigner, issuerCertificate: constrained.intermediate, dnsNames: ['x.other.internal'], allowedDnsNames: ['*.other.internal'] }),
        ),
      'denied',
      'pki.san_not_allowed',
      /DNS name x\.other\.internal is outside the permitted subtrees \(media\.internal\)/,
    );
  });

  it('is deterministic in everything but the signature for a seeded random source', async () => {
    const a = await issueLeafCertificate(request());
    const b = await issueLeafCertificate(request());
    expect(a.serialNumber).to.equal(b.serialNumber);
    expect(Buffer.from(fieldsOf(a).signed.tbs).equals(fieldsOf(b).signed.tbs)).to.equal(true);
  });
});
