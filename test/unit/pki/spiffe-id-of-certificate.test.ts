import { expect } from 'chai';
import { createPublicKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  basicConstraintsExtension,
  fieldsOf,
  issueLeafCertificate,
  keyUsageExtension,
  parseSpiffeId,
  signerCryptoFor,
  spiffeIdOfCertificate,
  subjectAltNameExtension,
  type EncodableName,
} from '../../../src/pki/index.js';
import { spkiOf } from '../../../src/core/index.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { NOW, TRUST_DOMAIN, checkedCsrFor, createTestPki, expectBrokerError, privateKey, type TestPki } from './pki-fixtures.js';

describe('pki/spiffe-id-of-certificate', () => {
  let pki: TestPki;
  before(async () => {
    pki = await createTestPki('svid');
  });

  async function withSan(names: EncodableName[] | null): Promise<x509.X509Certificate> {
    const adapter = await signerCryptoFor(pki.intermediateSigner);
    return x509.X509CertificateGenerator.create(
      {
        serialNumber: '01',
        issuer: new x509.Name(fieldsOf(pki.intermediate).subjectRaw),
        subject: 'CN=x',
        notBefore: NOW,
        notAfter: new Date(NOW.getTime() + 60_000),
        publicKey: spkiOf(createPublicKey(privateKey('P-256'))),
        signingKey: adapter.signingKey,
        signingAlgorithm: adapter.signingAlgorithm,
        extensions: [basicConstraintsExtension(false), keyUsageExtension(['digitalSignature']), ...(names === null ? [] : [subjectAltNameExtension(names, false)])],
      },
      adapter.crypto,
    );
  }

  it('reads the SPIFFE ID of an issued leaf', async () => {
    const leaf = await issueLeafCertificate({
      issuerSigner: pki.intermediateSigner,
      issuerCertificate: pki.intermediate,
      csr: await checkedCsrFor(),
      spiffeId: parseSpiffeId(`spiffe://${TRUST_DOMAIN}/media/blur`),
      profile: 'service',
      dnsNames: ['blur.media.internal'],
      allowedDnsNames: ['blur.media.internal'],
      now: NOW,
      random: new SeededRandom('svid'),
    });
    expect(spiffeIdOfCertificate(leaf).toString()).to.equal(`spiffe://${TRUST_DOMAIN}/media/blur`);
  });

  it('refuses CAs, missing or repeated URI SANs, non-SPIFFE URIs and IDs without path', async () => {
    await expectBrokerError(() => spiffeIdOfCertificate(pki.intermediate), 'invalid', 'pki.svid', /is a CA certificate/);
    await expectBrokerError(async () => spiffeIdOfCertificate(await withSan(null)), 'invalid', 'pki.svid', /has 0 URI SANs/);
    await expectBrokerError(
      async () => spiffeIdOfCertificate(await withSan([{ kind: 'uniformResourceIdentifier', text: 'spiffe://td/a' }, { kind: 'uniformResourceIdentifier', text: 'spiffe://td/b' }])),
      'invalid',
      'pki.svid',
      /has 2 URI SANs/,
    );
    await expectBrokerError(async () => spiffeIdOfCertificate(await withSan([{ kind: 'uniformResourceIdentifier', text: 'https://td/a' }])), 'invalid', 'pki.svid', /not a SPIFFE ID/);
    await expectBrokerError(async () => spiffeIdOfCertificate(await withSan([{ kind: 'uniformResourceIdentifier', text: 'spiffe://td' }])), 'invalid', 'pki.svid', /has no path/);
  });
});
