import { expect } from 'chai';
import { createPublicKey, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SoftwareSigner, spkiOf, type Signer } from '../../../src/core/index.js';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  buildChain,
  createIntermediateCertificate,
  extendedKeyUsageExtension,
  fieldsOf,
  issueLeafCertificate,
  keyIdentifierOf,
  keyUsageExtension,
  newSerialNumber,
  parseSpiffeId,
  signerCryptoFor,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
  verifyChain,
  ExtendedKeyUsageOid,
  type KeyUsageName,
} from '../../../src/pki/index.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import {
  INTERMEDIATE_NOT_AFTER,
  INTERMEDIATE_NOT_BEFORE,
  NOW,
  TRUST_DOMAIN,
  checkedCsrFor,
  createTestPki,
  expectBrokerError,
  privateKey,
  type TestPki,
} from './pki-fixtures.js';

const random = new SeededRandom('chain-crafted');

/** Options of a hand-made certificate (to build chains the issuing code would refuse to make). */
interface CraftOptions {
  subject?: string;
  uri?: string;
  ca?: boolean;
  pathLength?: number;
  keyUsages?: KeyUsageName[];
  extra?: x509.Extension[];
  notBefore?: Date;
  notAfter?: Date;
}

/** Signs any certificate with `issuerSigner`, bypassing the profile checks. */
async function craft(issuerSigner: Signer, issuer: x509.X509Certificate, publicKey: KeyObject, options: CraftOptions = {}): Promise<x509.X509Certificate> {
  const adapter = await signerCryptoFor(issuerSigner);
  const ca = options.ca ?? false;
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: newSerialNumber(random),
      ...(options.subject === undefined ? {} : { subject: options.subject }),
      issuer: new x509.Name(fieldsOf(issuer).subjectRaw),
      notBefore: options.notBefore ?? INTERMEDIATE_NOT_BEFORE,
      notAfter: options.notAfter ?? INTERMEDIATE_NOT_AFTER,
      publicKey: spkiOf(publicKey),
      signingKey: adapter.signingKey,
      signingAlgorithm: adapter.signingAlgorithm,
      extensions: [
        basicConstraintsExtension(ca, options.pathLength),
        keyUsageExtension(options.keyUsages ?? (ca ? ['keyCertSign', 'cRLSign'] : ['digitalSignature'])),
        ...(ca ? [] : [extendedKeyUsageExtension([ExtendedKeyUsageOid.serverAuth, ExtendedKeyUsageOid.clientAuth])]),
        subjectKeyIdentifierExtension(keyIdentifierOf(publicKey)),
        authorityKeyIdentifierExtension(keyIdentifierOf(issuerSigner.publicKey)),
        ...(options.uri === undefined ? [] : [subjectAltNameExtension([{ kind: 'uniformResourceIdentifier', text: options.uri }], options.subject === undefined)]),
        ...(options.extra ?? []),
      ],
    },
    adapter.crypto,
  );
}

describe('pki/chain', () => {
  let pki: TestPki;
  let other: TestPki;
  let leaf: x509.X509Certificate;

  before(async () => {
    pki = await createTestPki('chain');
    other = await createTestPki('chain-other');
    leaf = await issueLeafCertificate({
      issuerSigner: pki.intermediateSigner,
      issuerCertificate: pki.intermediate,
      csr: await checkedCsrFor(),
      spiffeId: parseSpiffeId(`spiffe://${TRUST_DOMAIN}/media/blur`),
      profile: 'service',
      now: NOW,
      random,
    });
  });

  describe('buildChain', () => {
    it('builds leaf → intermediate → root from unordered candidates with distractors', async () => {
      const chain = await buildChain(leaf, [other.intermediate, pki.root, pki.intermediate], [other.root, pki.root]);
      expect(chain.map((c) => c.serialNumber)).to.deep.equal([leaf, pki.intermediate, pki.root].map((c) => c.serialNumber));
    });

    it('picks, of two intermediates with the same name (a rollover), the one that signed the leaf', async () => {
      // `other.intermediate` has the same subject as `pki.intermediate` but another key and root.
      expect(other.intermediate.subject).to.equal(pki.intermediate.subject);
      const rolled = await createIntermediateCertificate({
        issuerSigner: pki.rootSigner,
        issuerCertificate: pki.root,
        publicKey: (await SoftwareSigner.generate('P-256')).publicKey,
        subject: 'CN=credbroker test intermediate,O=credbroker',
        trustDomain: TRUST_DOMAIN,
        notBefore: INTERMEDIATE_NOT_BEFORE,
        notAfter: INTERMEDIATE_NOT_AFTER,
        random,
      });
      const chain = await buildChain(leaf, [rolled, other.intermediate, pki.intermediate], [pki.root]);
      expect(chain[1]?.serialNumber).to.equal(pki.intermediate.serialNumber);
    });

    it('returns a root alone when the leaf is itself a trusted root', async () => {
      expect((await buildChain(pki.root, [], [pki.root])).length).to.equal(1);
    });

    it('fails with pki.chain, naming the leaf, when no chain reaches a trusted root', async () => {
      await expectBrokerError(() => buildChain(leaf, [pki.intermediate], [other.root]), 'invalid', 'pki.chain', /spiffe:\/\/anonymizer\.test\/media\/blur \(serial [0-9a-f]{32}\)/);
      await expectBrokerError(() => buildChain(leaf, [], [pki.root]), 'invalid', 'pki.chain');
      await expectBrokerError(() => buildChain(leaf, [other.intermediate], [other.root]), 'invalid', 'pki.chain');
    });
  });

  describe('verifyChain', () => {
    it('accepts a valid chain at any instant inside every validity period, for both purposes', async () => {
      for (const at of [leaf.notBefore, NOW, leaf.notAfter]) {
        await verifyChain([leaf, pki.intermediate, pki.root], [pki.root], at, { purpose: 'serverAuth' });
      }
      await verifyChain([pki.intermediate, pki.root], [pki.root], NOW);
      await verifyChain([pki.root], [pki.root], NOW);
    });

    it('refuses an expired leaf (pki.chain_expired) and one not yet valid, naming it', async () => {
      const chain = [leaf, pki.intermediate, pki.root];
      await expectBrokerError(
        () => verifyChain(chain, [pki.root], new Date(leaf.notAfter.getTime() + 1000)),
        'invalid',
        'pki.chain_expired',
        /^certificate 0 \(leaf\) spiffe:\/\/anonymizer\.test\/media\/blur \(serial [0-9a-f]+\) expired at 2026-03-01T13:00:00\.000Z/,
      );
      await expectBrokerError(() => verifyChain(chain, [pki.root], new Date(leaf.notBefore.getTime() - 1000)), 'invalid', 'pki.chain_not_yet_valid', /certificate 0 \(leaf\)/);
    });

    it('refuses an expired intermediate', async () => {
      const expiredSigner = await SoftwareSigner.generate('P-256');
      const expired = await craft(pki.rootSigner, pki.root, expiredSigner.publicKey, { subject: 'CN=expired', ca: true, pathLength: 0, notAfter: new Date('2026-02-01T00:00:00Z') });
      const child = await craft(expiredSigner, expired, createPublicKey(privateKey('P-256')), { uri: `spiffe://${TRUST_DOMAIN}/x`, notBefore: new Date('2026-01-15T00:00:00Z'), notAfter: new Date('2026-04-01T00:00:00Z') });
      await expectBrokerError(() => verifyChain([child, expired, pki.root], [pki.root], NOW), 'invalid', 'pki.chain_expired', /certificate 1 \(intermediate\) "CN=expired"/);
    });

    it('refuses an untrusted root', async () => {
      await expectBrokerError(() => verifyChain([leaf, pki.intermediate, pki.root], [other.root], NOW), 'invalid', 'pki.chain_untrusted', /certificate 2 \(root\) "CN=credbroker test root, O=credbroker"/);
    });

    it('refuses a wrong issuer: names that differ (pki.chain_issuer) and a same-named impostor (pki.chain_signature)', async () => {
      await expectBrokerError(() => verifyChain([leaf, pki.root], [pki.root], NOW), 'invalid', 'pki.chain_issuer', /certificate 0 \(leaf\) .* was not issued by certificate 1 \(root\)/);
      await expectBrokerError(
        () => verifyChain([leaf, other.intermediate, other.root], [other.root], NOW),
        'invalid',
        'pki.chain_signature',
        /the signature of certificate 0 \(leaf\) .* does not verify with the key of certificate 1 \(intermediate\)/,
      );
    });

    it('refuses a leaf outside the intermediate name constraints (another trust domain)', async () => {
      const outside = await craft(pki.intermediateSigner, pki.intermediate, createPublicKey(privateKey('P-256')), {
        uri: 'spiffe://payments.test/db',
        notBefore: new Date('2026-03-01T00:00:00Z'),
        notAfter: new Date('2026-03-02T00:00:00Z'),
      });
      await expectBrokerError(
        () => verifyChain([outside, pki.intermediate, pki.root], [pki.root], NOW),
        'invalid',
        'pki.chain_name_constraints',
        /certificate 0 \(leaf\) spiffe:\/\/payments\.test\/db .* violates the name constraints of certificate 1 \(intermediate\) .*: URI spiffe:\/\/payments\.test\/db is outside the permitted subtrees \(anonymizer\.test\)/,
      );
      // A URI whose host merely ends with the trust domain is outside too.
      const lookalike = await craft(pki.intermediateSigner, pki.intermediate, createPublicKey(privateKey('P-256')), { uri: 'spiffe://evil-anonymizer.test/db' });
      await expectBrokerError(() => verifyChain([lookalike, pki.intermediate, pki.root], [pki.root], NOW), 'invalid', 'pki.chain_name_constraints');
    });

    it('refuses a leaf used as a CA (pki.chain_not_ca)', async () => {
      const key = privateKey('P-256');
      const leafSigner = await SoftwareSigner.fromPrivateKey(key);
      const parent = await issueLeafCertificate({
        issuerSigner: pki.intermediateSigner,
        issuerCertificate: pki.intermediate,
        csr: await checkedCsrFor(key),
        spiffeId: parseSpiffeId(`spiffe://${TRUST_DOMAIN}/sneaky`),
        profile: 'service',
        now: NOW,
        random,
      });
      const child = await craft(leafSigner, parent, createPublicKey(privateKey('P-256')), { uri: `spiffe://${TRUST_DOMAIN}/child`, notBefore: parent.notBefore, notAfter: parent.notAfter });
      await expectBrokerError(() => verifyChain([child, parent, pki.intermediate, pki.root], [pki.root], NOW), 'invalid', 'pki.chain_not_ca', /certificate 1 \(intermediate\) spiffe:\/\/anonymizer\.test\/sneaky .* is not a CA/);
    });

    it('refuses a CA below a pathLen 0 intermediate (pki.chain_path_length)', async () => {
      const deeperSigner = await SoftwareSigner.generate('P-256');
      const deeper = await craft(pki.intermediateSigner, pki.intermediate, deeperSigner.publicKey, { subject: 'CN=too deep', ca: true });
      const child = await craft(deeperSigner, deeper, createPublicKey(privateKey('P-256')), { uri: `spiffe://${TRUST_DOMAIN}/x` });
      await expectBrokerError(
        () => verifyChain([child, deeper, pki.intermediate, pki.root], [pki.root], NOW),
        'invalid',
        'pki.chain_path_length',
        /certificate 2 \(intermediate\) "CN=credbroker test intermediate, O=credbroker" .* allows 0 intermediate CA\(s\) below it, the chain has 1/,
      );
    });

    it('refuses a CA without keyCertSign (pki.chain_key_usage)', async () => {
      const weakSigner = await SoftwareSigner.generate('P-256');
      const weak = await craft(pki.rootSigner, pki.root, weakSigner.publicKey, { subject: 'CN=crl only', ca: true, pathLength: 0, keyUsages: ['cRLSign'] });
      const child = await craft(weakSigner, weak, createPublicKey(privateKey('P-256')), { uri: `spiffe://${TRUST_DOMAIN}/x` });
      await expectBrokerError(() => verifyChain([child, weak, pki.root], [pki.root], NOW), 'invalid', 'pki.chain_key_usage', /"CN=crl only" .* lacks keyCertSign/);
    });

    it('refuses an unknown critical extension (pki.chain_critical_extension)', async () => {
      const odd = await craft(pki.intermediateSigner, pki.intermediate, createPublicKey(privateKey('P-256')), {
        uri: `spiffe://${TRUST_DOMAIN}/odd`,
        extra: [new x509.Extension('1.3.6.1.4.1.99999.7', true, Buffer.from([0x05, 0x00]))],
      });
      await expectBrokerError(() => verifyChain([odd, pki.intermediate, pki.root], [pki.root], NOW), 'invalid', 'pki.chain_critical_extension', /1\.3\.6\.1\.4\.1\.99999\.7/);
    });

    it('refuses an empty chain and a malformed certificate', async () => {
      await expectBrokerError(() => verifyChain([], [pki.root], NOW), 'invalid', 'pki.chain_empty');
      const der = Buffer.from(leaf.rawData);
      const broken = new x509.X509Certificate(Buffer.concat([der, Buffer.from([0])]));
      await expectBrokerError(() => verifyChain([broken, pki.intermediate, pki.root], [pki.root], NOW), 'invalid', 'pki.chain_malformed', /certificate 0 of the chain is malformed/);
    });
  });
});
