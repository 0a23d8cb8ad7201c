import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SoftwareSigner } from '../../../src/core/index.js';
import { checkCsr, createIntermediateCertificate, createRootCertificate, issueLeafCertificate, parseSpiffeId } from '../../../src/pki/index.js';
import { PeerVerifier, type PeerTrust } from '../../../src/server/peer-verifier.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { buildCsr } from '../../helpers/csr-builder.js';
import { SeededRandom } from '../../helpers/seeded-random.js';

const NOW = new Date('2026-12-04T12:00:00Z');
const HOUR_MS = 3_600_000;

async function ca(trustDomain: string, random: SeededRandom): Promise<{ root: x509.X509Certificate; intermediate: x509.X509Certificate; signer: SoftwareSigner }> {
  const rootSigner = await SoftwareSigner.generate('P-256');
  const root = await createRootCertificate({ signer: rootSigner, subject: `CN=${trustDomain} root`, notBefore: new Date(NOW.getTime() - HOUR_MS), notAfter: new Date(NOW.getTime() + 100 * HOUR_MS), random });
  const signer = await SoftwareSigner.generate('P-256');
  const intermediate = await createIntermediateCertificate({
    issuerSigner: rootSigner,
    issuerCertificate: root,
    publicKey: signer.publicKey,
    subject: `CN=${trustDomain} intermediate`,
    trustDomain,
    notBefore: new Date(NOW.getTime() - HOUR_MS),
    notAfter: new Date(NOW.getTime() + 50 * HOUR_MS),
    random,
  });
  return { root, intermediate, signer };
}

async function leafOf(issuer: { intermediate: x509.X509Certificate; signer: SoftwareSigner }, spiffeId: string, random: SeededRandom): Promise<Uint8Array> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = await issueLeafCertificate({
    issuerSigner: issuer.signer,
    issuerCertificate: issuer.intermediate,
    csr: await checkCsr(buildCsr(privateKey)),
    spiffeId: parseSpiffeId(spiffeId),
    profile: 'service',
    now: NOW,
    random,
  });
  return new Uint8Array(leaf.rawData);
}

describe('server/peer-verifier', () => {
  const random = new SeededRandom('peer-verifier');
  const revoked = new Set<string>();
  let ours: Awaited<ReturnType<typeof ca>>;
  let verifier: PeerVerifier;
  let trust: PeerTrust;

  before(async () => {
    ours = await ca('e2e.test', random);
    trust = { roots: [ours.root], intermediates: [ours.intermediate], trustDomain: 'e2e.test', isRevoked: (serial) => revoked.has(serial) };
    verifier = new PeerVerifier(() => trust);
  });

  it('accepts a certificate of the trust domain and names its identity', async () => {
    const peer = await verifier.verify(await leafOf(ours, 'spiffe://e2e.test/pipeline/blur', random), NOW);
    expect(peer.spiffeId).to.equal('spiffe://e2e.test/pipeline/blur');
    expect(peer.serial).to.match(/^[0-9a-f]+$/);
  });

  it('refuses: none, not yet valid, expired, revoked (checked on every call, after caching)', async () => {
    expect((await catchBrokerError(verifier.verify(undefined, NOW))).code).to.equal('peer.no_certificate');
    const der = await leafOf(ours, 'spiffe://e2e.test/pipeline/import', random);
    const peer = await verifier.verify(der, NOW);
    expect((await catchBrokerError(verifier.verify(der, new Date(peer.notBefore.getTime() - 1000)))).code).to.equal('peer.not_yet_valid');
    expect((await catchBrokerError(verifier.verify(der, new Date(peer.notAfter.getTime() + 1000)))).code).to.equal('peer.expired');
    revoked.add(peer.serial);
    const error = await catchBrokerError(verifier.verify(der, NOW));
    expect(error.code).to.equal('peer.revoked');
    expect(error.kind).to.equal('unauthenticated');
  });

  it('refuses a certificate from another CA, and one of another trust domain even from a trusted CA', async () => {
    const other = await ca('payments.test', random);
    expect((await catchBrokerError(verifier.verify(await leafOf(other, 'spiffe://payments.test/db', random), NOW))).code).to.equal('peer.unknown_ca');
    // A broker that (wrongly) trusted both CAs still holds to its own trust domain.
    const both = new PeerVerifier(() => ({ ...trust, roots: [ours.root, other.root], intermediates: [ours.intermediate, other.intermediate] }));
    expect((await catchBrokerError(both.verify(await leafOf(other, 'spiffe://payments.test/db', random), NOW))).code).to.equal('peer.trust_domain');
  });

  it('during a roll-over accepts leaves of every trusted intermediate, also when they share a subject name', async () => {
    const rootSigner = await SoftwareSigner.generate('P-256');
    const root = await createRootCertificate({ signer: rootSigner, subject: 'CN=roll root', notBefore: new Date(NOW.getTime() - HOUR_MS), notAfter: new Date(NOW.getTime() + 100 * HOUR_MS), random });
    const make = async (): Promise<{ intermediate: x509.X509Certificate; signer: SoftwareSigner }> => {
      const signer = await SoftwareSigner.generate('P-256');
      const intermediate = await createIntermediateCertificate({ issuerSigner: rootSigner, issuerCertificate: root, publicKey: signer.publicKey, subject: 'CN=roll intermediate', trustDomain: 'e2e.test', notBefore: new Date(NOW.getTime() - HOUR_MS), notAfter: new Date(NOW.getTime() + 50 * HOUR_MS), random });
      return { intermediate, signer };
    };
    const [old, next] = [await make(), await make()];
    const rolling = new PeerVerifier(() => ({ ...trust, roots: [root], intermediates: [next.intermediate, old.intermediate] }));
    expect((await rolling.verify(await leafOf(old, 'spiffe://e2e.test/pipeline/blur', random), NOW)).spiffeId).to.equal('spiffe://e2e.test/pipeline/blur');
    expect((await rolling.verify(await leafOf(next, 'spiffe://e2e.test/pipeline/blur', random), NOW)).spiffeId).to.equal('spiffe://e2e.test/pipeline/blur');
    // Once the old one is retired, its leaves are refused.
    const retired = new PeerVerifier(() => ({ ...trust, roots: [root], intermediates: [next.intermediate] }));
    expect((await catchBrokerError(retired.verify(await leafOf(old, 'spiffe://e2e.test/pipeline/blur', random), NOW))).code).to.equal('peer.untrusted');
  });

  it('refuses garbage', async () => {
    expect((await catchBrokerError(verifier.verify(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]), NOW))).code).to.equal('peer.malformed');
  });
});
