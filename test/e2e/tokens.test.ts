/**
 * Tokens end to end: IssueToken over mTLS signed by the HSM's token-signing key, verified with
 * the JWKS from GetJwks (by jose directly and by the library's TokenVerifier), bound to the
 * caller's certificate; every refusal with its status and audit entry.
 */
import { expect } from 'chai';
import { X509Certificate, createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { unary, type BrokerClients } from '../../src/agent/index.js';
import { ManualClock } from '../../src/core/index.js';
import { TokenVerificationError, TokenVerifier } from '../../src/tokens/index.js';
import { expectRefused } from './expect-refused.js';
import { BLUR, IMPORT, OPERATOR, TRUST_DOMAIN, startE2eBroker, type ClientIdentity, type E2eBroker } from './harness.js';

interface IssuedToken {
  token: string;
  tokenId: string;
  expiresAtUnix: number;
  bound: boolean;
  requestId: string;
}

const ISSUER = `spiffe://${TRUST_DOMAIN}/credbroker`;

function derOf(identity: ClientIdentity): Buffer {
  return new X509Certificate(identity.certificatePem).raw;
}

async function verificationCode(action: Promise<unknown>): Promise<string> {
  try {
    await action;
  } catch (error) {
    if (error instanceof TokenVerificationError) return error.code;
    throw error;
  }
  throw new Error('expected the verification to fail');
}

describe('e2e: tokens', function () {
  this.timeout(60_000);
  let e2e: E2eBroker;
  let importer: ClientIdentity;
  let blur: ClientIdentity;
  let operator: ClientIdentity;
  let importClients: BrokerClients;
  let jwks: JSONWebKeySet;

  before(async () => {
    e2e = await startE2eBroker();
    operator = await e2e.enroll(await e2e.bootstrapToken(OPERATOR));
    importer = await e2e.enroll(await e2e.bootstrapToken(IMPORT));
    blur = await e2e.enroll(await e2e.bootstrapToken(BLUR));
    importClients = e2e.as(importer);
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  it('GetJwks needs no client certificate and names the current kid', async () => {
    const reply = await unary<{ jwksJson: string; currentKid: string }>(e2e.anonymous().tokens, 'GetJwks', {});
    jwks = JSON.parse(reply.jwksJson) as JSONWebKeySet;
    expect(jwks.keys.map((k) => k.kid)).to.deep.equal([reply.currentKid]);
    expect(jwks.keys[0]).to.include({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0]).to.not.have.property('d');
  });

  it('issues a bound token (policy requires binding): jose verifies it; cnf holds the caller certificate\'s x5t#S256; the audit has its id, never the token', async () => {
    const issued = await unary<IssuedToken>(importClients.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'] });
    expect(issued.bound).to.equal(true);
    const header = decodeProtectedHeader(issued.token);
    expect(header).to.include({ alg: 'ES256', typ: 'at+jwt', kid: jwks.keys[0]?.kid });
    const { payload } = await jwtVerify(issued.token, createLocalJWKSet(jwks), { issuer: ISSUER, audience: 'storage.source' });
    expect(payload).to.include({ sub: IMPORT, client_id: IMPORT, scope: 'media.source.write', jti: issued.tokenId, exp: issued.expiresAtUnix });
    expect(payload.exp! - payload.iat!, 'the identity default: 5 min').to.equal(300);
    expect(payload.cnf).to.deep.equal({ 'x5t#S256': createHash('sha256').update(derOf(importer)).digest('base64url') });
    const audit = await unary<{ entries: { action: string; outcome: string; detailsJson: string }[] }>(e2e.as(operator).administration, 'QueryAudit', { action: 'IssueToken', pageSize: 5 });
    const entry = audit.entries[0];
    expect(entry?.outcome).to.equal('allowed');
    expect(JSON.parse(entry?.detailsJson ?? '{}')).to.include({ tokenId: issued.tokenId, scopes: 'media.source.write', bound: true });
    expect(JSON.stringify(audit)).to.not.contain(issued.token.split('.')[2]);
  });

  it('the library verifier: accepts the bound token with its certificate; refuses another certificate, no certificate, expiry and an unknown kid', async () => {
    const issued = await unary<IssuedToken>(importClients.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'], ttlSeconds: 120 });
    const clock = new ManualClock(Date.now());
    const verifier = new TokenVerifier({ issuer: ISSUER, jwks, clock });
    const verified = await verifier.verify(issued.token, { audience: 'storage.source', scopes: ['media.source.write'], clientCertificate: derOf(importer) });
    expect(verified).to.include({ subject: IMPORT, bound: true });
    expect(await verificationCode(verifier.verify(issued.token, { audience: 'storage.source', clientCertificate: derOf(blur) }))).to.equal('binding');
    expect(await verificationCode(verifier.verify(issued.token, { audience: 'storage.source' }))).to.equal('binding');
    expect(await verificationCode(verifier.verify(issued.token, { audience: 'storage.detections', clientCertificate: derOf(importer) }))).to.equal('audience');
    expect(await verificationCode(verifier.verify(issued.token, { audience: 'storage.source', scopes: ['media.source.read'], clientCertificate: derOf(importer) }))).to.equal('scope');
    clock.advance(121_000 + 60_000);
    expect(await verificationCode(verifier.verify(issued.token, { audience: 'storage.source', clientCertificate: derOf(importer) }))).to.equal('expired');
    const stranger = new TokenVerifier({ issuer: ISSUER, jwks: { keys: [] }, clock: new ManualClock(Date.now()) });
    expect(await verificationCode(stranger.verify(issued.token, { audience: 'storage.source', clientCertificate: derOf(importer) }))).to.equal('unknown_kid');
  });

  it('unbound where policy allows (blur), bound when asked', async () => {
    const blurClients = e2e.as(blur);
    const plain = await unary<IssuedToken>(blurClients.tokens, 'IssueToken', { audience: 'storage.anonymized', scopes: ['media.anonymized.write'] });
    expect(plain.bound).to.equal(false);
    const verifier = new TokenVerifier({ issuer: ISSUER, jwks });
    expect(await verifier.verify(plain.token, { audience: 'storage.anonymized' })).to.include({ bound: false, subject: BLUR });
    expect(await verificationCode(verifier.verify(plain.token, { audience: 'storage.anonymized', requireBinding: true }))).to.equal('binding');
    const bound = await unary<IssuedToken>(blurClients.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.read'], bindToCertificate: true });
    expect(bound.bound).to.equal(true);
    expect(await verifier.verify(bound.token, { audience: 'storage.source', clientCertificate: derOf(blur) })).to.include({ bound: true });
  });

  describe('refusals', () => {
    it('an audience outside policy: PERMISSION_DENIED', async () => {
      await expectRefused(e2e, () => unary(importClients.tokens, 'IssueToken', { audience: 'storage.anonymized', scopes: ['media.source.write'] }), grpc.status.PERMISSION_DENIED, 'IssueToken', 'policy.audience');
    });

    it('a scope outside policy (alone or next to a granted one): PERMISSION_DENIED', async () => {
      await expectRefused(e2e, () => unary(importClients.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.read'] }), grpc.status.PERMISSION_DENIED, 'IssueToken', 'policy.scope');
      await expectRefused(e2e, () => unary(importClients.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write', 'media.source.delete'] }), grpc.status.PERMISSION_DENIED, 'IssueToken', 'policy.scope');
    });

    it('no scope, a malformed audience, a TTL above the identity\'s cap: INVALID_ARGUMENT', async () => {
      await expectRefused(e2e, () => unary(importClients.tokens, 'IssueToken', { audience: 'storage.source', scopes: [] }), grpc.status.INVALID_ARGUMENT, 'IssueToken', 'policy.scope');
      await expectRefused(e2e, () => unary(importClients.tokens, 'IssueToken', { audience: 'storage source', scopes: ['media.source.write'] }), grpc.status.INVALID_ARGUMENT, 'IssueToken', 'policy.audience');
      await expectRefused(e2e, () => unary(importClients.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'], ttlSeconds: 601 }), grpc.status.INVALID_ARGUMENT, 'IssueToken', 'policy.ttl');
    });

    it('an identity with no token grant (the operator): PERMISSION_DENIED', async () => {
      await expectRefused(e2e, () => unary(e2e.as(operator).tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'] }), grpc.status.PERMISSION_DENIED, 'IssueToken', 'policy.no_tokens');
    });

    it('no client certificate: UNAUTHENTICATED', async () => {
      await expectRefused(e2e, () => unary(e2e.anonymous().tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'] }), grpc.status.UNAUTHENTICATED, 'IssueToken', 'peer.no_certificate');
    });
  });
});
