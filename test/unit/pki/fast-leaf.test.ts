/**
 * Differential test of the leaf hot path (DESIGN.md "Performance shape"): issueLeafCertificate
 * (precomputed DER template, one Signer call) against issueLeafCertificateWithLibrary (built
 * and signed by @peculiar/x509), from the same request and the same seeded random source.
 *
 * ECDSA signatures are randomized, so the issuer's Signer is wrapped in a memoizing one: the
 * second signature of the same bytes is the first one again. Identical TBSCertificates thus
 * give identical certificates, and any difference in the TBS shows up as a difference of the
 * whole DER (for Ed25519 and RSA PKCS#1 v1.5 the signatures are deterministic anyway). Each
 * fast certificate's signature is also verified with node:crypto.
 */
import { expect } from 'chai';
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { BrokerError, HOUR_MS, MINUTE_MS, SoftwareSigner, type KeyType, type SignatureAlgorithm, type Signer } from '../../../src/core/index.js';
import {
  DerCursor,
  DerTag,
  ExtensionOid,
  checkCsr,
  createIntermediateCertificate,
  createRootCertificate,
  derChildren,
  derParseSingle,
  encodeGeneralNames,
  issueLeafCertificate,
  parseSignedData,
  parseSpiffeId,
  type CheckedCsr,
  type LeafProfile,
  type LeafRequest,
} from '../../../src/pki/index.js';
import { issueLeafCertificateWithLibrary } from '../../../src/pki/leaf-certificate-reference.js';
import { buildCsr } from '../../helpers/csr-builder.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { NOW, TRUST_DOMAIN, createTestPki, privateKey, type TestPki } from './pki-fixtures.js';

const BLUR = `spiffe://${TRUST_DOMAIN}/media/blur`;

/** A Signer that signs each distinct message once and repeats that signature afterwards. */
class MemoizingSigner implements Signer {
  readonly algorithm: SignatureAlgorithm;
  readonly keyType: KeyType;
  readonly publicKey: KeyObject;
  readonly description: string;
  readonly #inner: Signer;
  readonly #signatures = new Map<string, Uint8Array>();

  constructor(inner: Signer) {
    this.#inner = inner;
    this.algorithm = inner.algorithm;
    this.keyType = inner.keyType;
    this.publicKey = inner.publicKey;
    this.description = `memoizing:${inner.description}`;
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    const key = Buffer.from(data).toString('base64');
    let signature = this.#signatures.get(key);
    if (signature === undefined) {
      signature = await this.#inner.sign(data);
      this.#signatures.set(key, signature);
    }
    return signature;
  }
}

/** A Signer with an issuer's public key that returns fixed bytes (for encoding edge cases). */
class ScriptedSigner implements Signer {
  readonly algorithm: SignatureAlgorithm;
  readonly keyType: KeyType;
  readonly publicKey: KeyObject;
  readonly description = 'scripted';
  signature: Uint8Array | Error = new Uint8Array(0);

  constructor(like: Signer) {
    this.algorithm = like.algorithm;
    this.keyType = like.keyType;
    this.publicKey = like.publicKey;
  }

  sign(): Promise<Uint8Array> {
    return this.signature instanceof Error ? Promise.reject(this.signature) : Promise.resolve(this.signature);
  }
}

const der = (certificate: x509.X509Certificate): string => Buffer.from(certificate.rawData).toString('hex');
const tbs = (certificate: x509.X509Certificate): string => Buffer.from(parseSignedData(new Uint8Array(certificate.rawData), 'certificate').tbs).toString('hex');

/** Issues the same request both ways (fresh, equally seeded random sources). */
async function bothWays(request: LeafRequest, seed: string): Promise<{ fast: x509.X509Certificate; reference: x509.X509Certificate }> {
  const reference = await issueLeafCertificateWithLibrary({ ...request, random: new SeededRandom(seed) });
  const fast = await issueLeafCertificate({ ...request, random: new SeededRandom(seed) });
  return { fast, reference };
}

/** Asserts byte identity, then that the fast certificate's signature verifies (node:crypto). */
function expectIdentical(fast: x509.X509Certificate, reference: x509.X509Certificate, issuerKey: KeyObject, what: string): void {
  expect(fast, what).to.be.instanceOf(x509.X509Certificate);
  expect(tbs(fast), `${what}: TBSCertificate`).to.equal(tbs(reference));
  expect(der(fast), `${what}: Certificate`).to.equal(der(reference));
  const signed = parseSignedData(new Uint8Array(fast.rawData), 'certificate');
  const digest = issuerKey.asymmetricKeyType === 'ed25519' ? null : issuerKey.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'sha384' : 'sha256';
  expect(cryptoVerify(digest, signed.tbs, issuerKey, signed.signature), `${what}: signature`).to.equal(true);
}

/** Tags of notBefore and notAfter: 0x17 UTCTime, 0x18 GeneralizedTime. */
function timeTags(certificate: x509.X509Certificate): [number, number] {
  const signed = parseSignedData(new Uint8Array(certificate.rawData), 'certificate');
  const body = derChildren(derParseSingle(signed.tbs, DerTag.sequence, 'tbs'), 'tbs');
  body.next();
  body.next();
  body.next();
  body.next();
  const validity = new DerCursor(body.read(DerTag.sequence, 'validity').content, 'validity');
  return [validity.next().tag, validity.next().tag];
}

const ISSUER_KEY_TYPES: readonly KeyType[] = ['P-256', 'P-384', 'Ed25519', 'RSA-3072'];
const SUBJECT_KEY_TYPES = ['P-256', 'P-384', 'Ed25519', 'RSA-2048'] as const;
const PROFILES: readonly LeafProfile[] = ['service', 'operator'];

/** SAN shapes: the SPIFFE ID alone, then with granted DNS names and IPv4/IPv6 addresses. */
const SAN_SHAPES: readonly { name: string; request: Partial<LeafRequest>; csrSans: boolean }[] = [
  { name: 'URI only', request: {}, csrSans: false },
  { name: 'URI + DNS', request: { dnsNames: ['blur.media.internal', 'Blur-Admin.Media.Internal'], allowedDnsNames: ['*.media.internal'] }, csrSans: false },
  { name: 'URI + IPv4', request: { ipAddresses: ['10.1.2.3'], allowedIpAddresses: ['10.0.0.0/8'] }, csrSans: false },
  { name: 'URI + IPv6', request: { ipAddresses: ['fd00:0:0::7', '::1'], allowedIpAddresses: ['fd00::/8', '::1'] }, csrSans: false },
  {
    name: 'URI + DNS + IPv4 + IPv6, partly requested in the CSR',
    request: { dnsNames: ['export.media.internal'], ipAddresses: ['2001:db8::1'], allowedDnsNames: ['*.media.internal'], allowedIpAddresses: ['10.0.0.0/8', '2001:db8::/32'] },
    csrSans: true,
  },
];

describe('pki/leaf-certificate: the fast path is byte-identical to @peculiar/x509', function () {
  this.timeout(120_000);
  const pkis = new Map<KeyType, { pki: TestPki; signer: MemoizingSigner }>();
  const csrs = new Map<string, { plain: CheckedCsr; withSans: CheckedCsr; inProcess: CheckedCsr; key: KeyObject }>();

  before(async () => {
    for (const keyType of ISSUER_KEY_TYPES) {
      const pki = await createTestPki(`fast-leaf-${keyType}`, { intermediateKeyType: keyType });
      pkis.set(keyType, { pki, signer: new MemoizingSigner(pki.intermediateSigner) });
    }
    for (const kind of SUBJECT_KEY_TYPES) {
      const key = privateKey(kind);
      const sanRequest = encodeGeneralNames([
        { kind: 'uniformResourceIdentifier', text: BLUR },
        { kind: 'dNSName', text: 'Blur.Media.Internal' },
        { kind: 'iPAddress', address: Buffer.from([10, 9, 8, 7]) },
      ]);
      const plain = await checkCsr(buildCsr(key));
      // As the broker builds for its own server identity: a key made in process, not read from a CSR.
      const inProcess: CheckedCsr = { ...plain, publicKey: createPublicKey(key) };
      csrs.set(kind, {
        key,
        plain,
        withSans: await checkCsr(buildCsr(key, { extensions: [{ oid: ExtensionOid.subjectAltName, value: sanRequest }] })),
        inProcess,
      });
    }
  });

  function request(issuer: KeyType, csr: CheckedCsr, profile: LeafProfile, overrides: Partial<LeafRequest> = {}): LeafRequest {
    const { pki, signer } = pkis.get(issuer)!;
    return {
      issuerSigner: signer,
      issuerCertificate: pki.intermediate,
      csr,
      spiffeId: parseSpiffeId(BLUR),
      profile,
      now: NOW,
      random: new SeededRandom('unused'),
      ...overrides,
    };
  }

  for (const issuer of ISSUER_KEY_TYPES) {
    for (const subject of SUBJECT_KEY_TYPES) {
      it(`${issuer} issuer, ${subject} key: both profiles × ${SAN_SHAPES.length} SAN shapes`, async () => {
        const { pki } = pkis.get(issuer)!;
        const { plain, withSans } = csrs.get(subject)!;
        for (const profile of PROFILES) {
          for (const shape of SAN_SHAPES) {
            const what = `${issuer}/${subject}/${profile}/${shape.name}`;
            const { fast, reference } = await bothWays(request(issuer, shape.csrSans ? withSans : plain, profile, shape.request), what);
            expectIdentical(fast, reference, pki.intermediateSigner.publicKey, what);
          }
        }
      });
    }
  }

  it('a key made in process (no CSR, as the broker\'s own server identity): same bytes, the key\'s own SPKI', async () => {
    for (const subject of SUBJECT_KEY_TYPES) {
      const { inProcess, key } = csrs.get(subject)!;
      const { fast, reference } = await bothWays(request('P-256', inProcess, 'service', { ttlMs: 10 * MINUTE_MS }), `in-process ${subject}`);
      expectIdentical(fast, reference, pkis.get('P-256')!.pki.intermediateSigner.publicKey, subject);
      const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
      expect(Buffer.from(fast.publicKey.rawData).equals(spki)).to.equal(true);
    }
  });

  it('certifies exactly the CSR key: the SPKI in the certificate is node\'s export of checkCsr\'s key', async () => {
    for (const subject of SUBJECT_KEY_TYPES) {
      const { plain } = csrs.get(subject)!;
      const fast = await issueLeafCertificate(request('Ed25519', plain, 'service'));
      expect(Buffer.from(fast.publicKey.rawData).equals(plain.publicKey.export({ format: 'der', type: 'spki' })), subject).to.equal(true);
    }
  });

  describe('validity: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5), clipped to the issuer', () => {
    let rootSigner: SoftwareSigner;
    let root: x509.X509Certificate;
    let signer: MemoizingSigner;
    let intermediate: x509.X509Certificate;
    let csr: CheckedCsr;

    async function intermediateUntil(notAfter: Date, seed: string): Promise<{ certificate: x509.X509Certificate; signer: MemoizingSigner }> {
      const key = await SoftwareSigner.generate('P-256');
      const certificate = await createIntermediateCertificate({
        issuerSigner: rootSigner,
        issuerCertificate: root,
        publicKey: key.publicKey,
        subject: `CN=intermediate until ${notAfter.toISOString()}`,
        trustDomain: TRUST_DOMAIN,
        notBefore: new Date('2045-01-01T00:00:00Z'),
        notAfter,
        random: new SeededRandom(seed),
      });
      return { certificate, signer: new MemoizingSigner(key) };
    }

    before(async () => {
      rootSigner = await SoftwareSigner.generate('P-384');
      root = await createRootCertificate({
        signer: rootSigner,
        subject: 'CN=root 2040-2060',
        notBefore: new Date('2040-01-01T00:00:00Z'),
        notAfter: new Date('2060-01-01T00:00:00Z'),
        random: new SeededRandom('root-2040'),
      });
      ({ certificate: intermediate, signer } = await intermediateUntil(new Date('2055-01-01T00:00:00Z'), 'intermediate-2055'));
      csr = csrs.get('P-256')!.plain;
    });

    const cases: { name: string; now: string; ttlMs: number; notBefore: string; notAfter: string; tags: [number, number]; issuerNotAfter?: string }[] = [
      { name: 'both in 2049', now: '2049-12-31T22:00:00.750Z', ttlMs: HOUR_MS, notBefore: '2049-12-31T21:59:00.000Z', notAfter: '2049-12-31T23:00:00.000Z', tags: [0x17, 0x17] },
      { name: 'notAfter at the last second of 2049', now: '2049-12-31T23:00:00.000Z', ttlMs: HOUR_MS - 1000, notBefore: '2049-12-31T22:59:00.000Z', notAfter: '2049-12-31T23:59:59.000Z', tags: [0x17, 0x17] },
      { name: 'notAfter at the first second of 2050', now: '2049-12-31T23:00:00.000Z', ttlMs: HOUR_MS, notBefore: '2049-12-31T22:59:00.000Z', notAfter: '2050-01-01T00:00:00.000Z', tags: [0x17, 0x18] },
      { name: 'across the boundary, fractions dropped', now: '2049-12-31T23:30:00.999Z', ttlMs: HOUR_MS, notBefore: '2049-12-31T23:29:00.000Z', notAfter: '2050-01-01T00:30:00.000Z', tags: [0x17, 0x18] },
      { name: 'backdated into 2049', now: '2050-01-01T00:00:30.000Z', ttlMs: HOUR_MS, notBefore: '2049-12-31T23:59:30.000Z', notAfter: '2050-01-01T01:00:30.000Z', tags: [0x17, 0x18] },
      { name: 'backdated exactly to 2050', now: '2050-01-01T00:01:00.000Z', ttlMs: HOUR_MS, notBefore: '2050-01-01T00:00:00.000Z', notAfter: '2050-01-01T01:01:00.000Z', tags: [0x18, 0x18] },
      { name: 'both in 2051, 24 h', now: '2051-06-15T12:00:00.000Z', ttlMs: 24 * HOUR_MS, notBefore: '2051-06-15T11:59:00.000Z', notAfter: '2051-06-16T12:00:00.000Z', tags: [0x18, 0x18] },
      { name: 'clipped to an issuer ending in 2050', now: '2049-12-31T23:30:00.000Z', ttlMs: 24 * HOUR_MS, issuerNotAfter: '2050-01-01T00:10:00.000Z', notBefore: '2049-12-31T23:29:00.000Z', notAfter: '2050-01-01T00:10:00.000Z', tags: [0x17, 0x18] },
      { name: 'clipped to an issuer ending in 2049', now: '2049-12-31T23:30:00.000Z', ttlMs: HOUR_MS, issuerNotAfter: '2049-12-31T23:45:00.000Z', notBefore: '2049-12-31T23:29:00.000Z', notAfter: '2049-12-31T23:45:00.000Z', tags: [0x17, 0x17] },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const issuer = c.issuerNotAfter === undefined ? { certificate: intermediate, signer } : await intermediateUntil(new Date(c.issuerNotAfter), c.name);
        const leafRequest: LeafRequest = { ...request('P-256', csr, 'service'), issuerSigner: issuer.signer, issuerCertificate: issuer.certificate, now: new Date(c.now), ttlMs: c.ttlMs };
        const { fast, reference } = await bothWays(leafRequest, c.name);
        expectIdentical(fast, reference, issuer.signer.publicKey, c.name);
        expect([fast.notBefore.toISOString(), fast.notAfter.toISOString()]).to.deep.equal([c.notBefore, c.notAfter]);
        expect(timeTags(fast)).to.deep.equal(c.tags);
      });
    }

    it('clipped to the test intermediate\'s notAfter (2027-01-01), in UTCTime', async () => {
      const { fast, reference } = await bothWays(request('P-256', csr, 'service', { now: new Date('2026-12-31T23:30:00.400Z'), ttlMs: 2 * HOUR_MS }), 'clip-2027');
      expectIdentical(fast, reference, pkis.get('P-256')!.pki.intermediateSigner.publicKey, 'clip-2027');
      expect(fast.notAfter.toISOString()).to.equal('2027-01-01T00:00:00.000Z');
      expect(timeTags(fast)).to.deep.equal([0x17, 0x17]);
    });
  });

  describe('ECDSA signature encoding (raw r || s to DER), as the library formats it', () => {
    const cases: { name: string; r: string; s: string }[] = [
      { name: 'leading zero bytes in r', r: '0000' + '7f'.repeat(30), s: '11'.repeat(32) },
      { name: 'r with its top bit set (sign byte added)', r: '80' + '01'.repeat(31), s: '22'.repeat(32) },
      { name: 'a zero byte, then a top bit', r: '0080' + '02'.repeat(30), s: '33'.repeat(32) },
      { name: 's = 1', r: '44'.repeat(32), s: '00'.repeat(31) + '01' },
      { name: 'both all ones', r: 'ff'.repeat(32), s: 'ff'.repeat(32) },
    ];
    for (const curve of ['P-256', 'P-384'] as const) {
      for (const c of cases) {
        it(`${curve}: ${c.name}`, async () => {
          const size = curve === 'P-256' ? 32 : 48;
          const widen = (hex: string): string => (hex.length / 2 < size ? hex.slice(0, 2).repeat(size - hex.length / 2) + hex : hex.slice(0, size * 2));
          const { pki } = pkis.get(curve)!;
          const scripted = new ScriptedSigner(pki.intermediateSigner);
          scripted.signature = Buffer.from(widen(c.r) + widen(c.s), 'hex');
          const { fast, reference } = await bothWays({ ...request(curve, csrs.get('P-256')!.plain, 'service'), issuerSigner: scripted }, c.name);
          expect(der(fast)).to.equal(der(reference));
        });
      }
    }
  });

  describe('the same errors as the reference', () => {
    const bad: { name: string; overrides: () => Partial<LeafRequest> }[] = [
      { name: 'unknown profile', overrides: () => ({ profile: 'admin' as never }) },
      { name: 'SPIFFE ID without path', overrides: () => ({ spiffeId: parseSpiffeId(`spiffe://${TRUST_DOMAIN}`) }) },
      { name: 'other trust domain', overrides: () => ({ spiffeId: parseSpiffeId('spiffe://payments.test/x') }) },
      { name: 'DNS SAN not allowed', overrides: () => ({ dnsNames: ['db.payments.internal'], allowedDnsNames: ['*.media.internal'] }) },
      { name: 'malformed IP', overrides: () => ({ ipAddresses: ['10.1.2'], allowedIpAddresses: ['10.0.0.0/8'] }) },
      { name: 'TTL above the cap', overrides: () => ({ ttlMs: 25 * HOUR_MS }) },
      { name: 'issuer expired', overrides: () => ({ now: new Date('2027-06-01T00:00:00Z') }) },
      { name: 'signer without the issuer key', overrides: () => ({ issuerSigner: pkis.get('P-384')!.pki.intermediateSigner }) },
    ];
    for (const c of bad) {
      it(c.name, async () => {
        const leafRequest = request('P-256', csrs.get('P-256')!.plain, 'service', c.overrides());
        const fast = await catchBrokerError(() => issueLeafCertificate(leafRequest));
        const reference = await catchBrokerError(() => issueLeafCertificateWithLibrary(leafRequest));
        expect({ kind: fast.kind, code: fast.code, publicMessage: fast.publicMessage, logMessage: fast.logMessage }).to.deep.equal({
          kind: reference.kind,
          code: reference.code,
          publicMessage: reference.publicMessage,
          logMessage: reference.logMessage,
        });
      });
    }

    it('a Signer failure reaches the caller unchanged', async () => {
      const scripted = new ScriptedSigner(pkis.get('P-256')!.pki.intermediateSigner);
      const failure = new BrokerError('unavailable', { code: 'hsm.session_lost', publicMessage: 'the HSM is reconnecting', retryable: true });
      scripted.signature = failure;
      const fast = await catchBrokerError(() => issueLeafCertificate({ ...request('P-256', csrs.get('P-256')!.plain, 'service'), issuerSigner: scripted }));
      expect(fast).to.equal(failure);
    });

    it('a signature of the wrong size is an internal error, not a certificate', async () => {
      const scripted = new ScriptedSigner(pkis.get('P-256')!.pki.intermediateSigner);
      scripted.signature = new Uint8Array(63);
      const error = await catchBrokerError(() => issueLeafCertificate({ ...request('P-256', csrs.get('P-256')!.plain, 'service'), issuerSigner: scripted }));
      expect({ kind: error.kind, code: error.code, publicMessage: error.publicMessage }).to.deep.equal({ kind: 'internal', code: 'pki.signature', publicMessage: 'internal error' });
      expect(error.logMessage).to.match(/scripted returned a 63-byte ES256 signature/);
    });
  });

  it('builds each template once per issuer, profile and key type: later leaves never call @peculiar/x509', async () => {
    const pki = await createTestPki('template-once');
    const csr = csrs.get('P-384')!.plain;
    const generator = x509.X509CertificateGenerator as { create: typeof x509.X509CertificateGenerator.create };
    const original = generator.create;
    let calls = 0;
    generator.create = (...args) => {
      calls++;
      return original.apply(x509.X509CertificateGenerator, args);
    };
    try {
      const issue = (profile: LeafProfile, leafCsr: CheckedCsr, seed: string): Promise<x509.X509Certificate> =>
        issueLeafCertificate({ ...request('P-256', leafCsr, profile), issuerSigner: pki.intermediateSigner, issuerCertificate: pki.intermediate, random: new SeededRandom(seed) });
      await Promise.all([issue('service', csr, 'a'), issue('service', csr, 'b'), issue('service', csr, 'c')]);
      expect(calls, 'concurrent first leaves share one template').to.equal(1);
      await issue('service', csr, 'd');
      expect(calls).to.equal(1);
      await issue('operator', csr, 'e');
      await issue('service', csrs.get('RSA-2048')!.plain, 'f');
      expect(calls, 'one more per profile and per key type').to.equal(3);
      for (let i = 0; i < 5; i++) await issue(i % 2 === 0 ? 'operator' : 'service', csr, `g${i}`);
      expect(calls).to.equal(3);
    } finally {
      generator.create = original;
    }
  });

  it('a CA signature is made only for the certificate itself (templates are built unsigned)', async () => {
    const pki = await createTestPki('one-signature');
    let signatures = 0;
    const counting: Signer = {
      algorithm: pki.intermediateSigner.algorithm,
      keyType: pki.intermediateSigner.keyType,
      publicKey: pki.intermediateSigner.publicKey,
      description: 'counting',
      sign: (data) => {
        signatures++;
        return pki.intermediateSigner.sign(data);
      },
    };
    await issueLeafCertificate({ ...request('P-256', csrs.get('Ed25519')!.plain, 'service'), issuerSigner: counting, issuerCertificate: pki.intermediate });
    expect(signatures).to.equal(1);
  });
});
