import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { ManualClock, SoftwareSigner, type Signer } from '../../../src/core/index.js';
import {
  TOKEN_VERIFICATION_ERROR_CODES,
  TokenIssuer,
  TokenVerifier,
  certificateSha256,
  jwksOf,
  type TokenExpectations,
  type TokenVerificationErrorCode,
} from '../../../src/tokens/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { AUDIENCE, ISSUER, SUBJECT, T0, T0_SECONDS, claimsAt, encodeJson, expectRefusal, fakeCertificate, pemOf, signCompact } from './token-fixtures.js';

describe('tokens/TokenVerifier', () => {
  let signer: Signer;
  let issuer: TokenIssuer;
  let stranger: TokenIssuer;
  let strangerSigner: Signer;
  let jwks: JSONWebKeySet;
  const certificate = fakeCertificate('camera-gateway client certificate');
  const otherCertificate = fakeCertificate('someone else');
  /** A verifier at T0 + 1 s. */
  let verifier: TokenVerifier;
  let clock: ManualClock;
  const seen = new Set<TokenVerificationErrorCode>();

  before(async () => {
    signer = await SoftwareSigner.generate('P-256');
    strangerSigner = await SoftwareSigner.generate('P-256');
    issuer = await TokenIssuer.create({ signer, issuer: ISSUER, random: new SeededRandom('verifier') });
    stranger = await TokenIssuer.create({ signer: strangerSigner, issuer: ISSUER, random: new SeededRandom('stranger') });
    jwks = jwksOf([issuer]);
  });

  beforeEach(() => {
    clock = new ManualClock(T0.getTime() + 1000);
    verifier = new TokenVerifier({ issuer: ISSUER, jwks, clock });
  });

  function header(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const value: Record<string, unknown> = { alg: 'ES256', kid: issuer.kid, typ: 'at+jwt' };
    for (const [name, member] of Object.entries(overrides)) {
      if (member === undefined) Reflect.deleteProperty(value, name);
      else value[name] = member;
    }
    return value;
  }

  async function bound(): Promise<string> {
    return (await issuer.issue({ subject: SUBJECT, audience: AUDIENCE, scopes: ['media.source.read'], ttlMs: 300_000, now: T0, certificateSha256: certificateSha256(certificate) })).token;
  }

  async function unbound(ttlMs = 300_000, now = T0): Promise<string> {
    return (await issuer.issue({ subject: SUBJECT, audience: AUDIENCE, scopes: ['media.source.read', 'media.source.list'], ttlMs, now })).token;
  }

  async function refused(token: string, code: TokenVerificationErrorCode, expectations: Partial<TokenExpectations> = {}, using = verifier): Promise<string> {
    const error = await expectRefusal(using.verify(token, { audience: AUDIENCE, ...expectations }), code, token);
    seen.add(code);
    return error.message;
  }

  describe('accepts', () => {
    it('a bound token with its certificate, as DER or PEM, and returns typed claims', async () => {
      const token = await bound();
      for (const clientCertificate of [certificate, pemOf(certificate)]) {
        const verified = await verifier.verify(token, { audience: AUDIENCE, scopes: ['media.source.read'], clientCertificate, requireBinding: true });
        expect(verified).to.deep.include({ subject: SUBJECT, clientId: SUBJECT, issuer: ISSUER, audience: AUDIENCE, bound: true, kid: issuer.kid, algorithm: 'ES256' });
        expect(verified.scopes).to.deep.equal(['media.source.read']);
        expect(verified.issuedAt.getTime()).to.equal(T0.getTime());
        expect(verified.expiresAt.getTime()).to.equal(T0.getTime() + 300_000);
        expect(verified.jti).to.match(/^[A-Za-z0-9_-]{22}$/);
      }
    });

    it('an unbound token without or with a presented certificate (bound: false)', async () => {
      const token = await unbound();
      expect((await verifier.verify(token, { audience: AUDIENCE })).bound).to.equal(false);
      expect((await verifier.verify(token, { audience: AUDIENCE, clientCertificate: certificate })).bound).to.equal(false);
    });

    it('up to the clock tolerance around nbf/iat and exp, and no further', async () => {
      const token = await unbound();
      clock.set(T0.getTime() + 304_999);
      expect((await verifier.verify(token, { audience: AUDIENCE })).subject).to.equal(SUBJECT);
      clock.set(T0.getTime() + 305_000);
      await refused(token, 'expired');
      const early = await unbound(300_000, new Date(T0.getTime() + 5000));
      clock.set(T0.getTime());
      expect((await verifier.verify(early, { audience: AUDIENCE })).subject).to.equal(SUBJECT);
      const tooEarly = await unbound(300_000, new Date(T0.getTime() + 6000));
      await refused(tooEarly, 'not_yet_valid');
    });

    it('typ "application/at+jwt" in any case, and an aud array that names the audience', async () => {
      const token = await signCompact(signer, header({ typ: 'Application/AT+JWT' }), claimsAt({ aud: ['queue.jobs', AUDIENCE] }));
      clock.set(T0.getTime());
      expect((await verifier.verify(token, { audience: AUDIENCE })).audience).to.equal(AUDIENCE);
    });
  });

  describe('refuses', () => {
    it('expired: a token past exp', async () => {
      const token = await unbound();
      clock.advance(3_600_000);
      expect(await refused(token, 'expired')).to.match(/expired at 2026-03-01T12:05:00.000Z/);
    });

    it('not_yet_valid: nbf in the future', async () => {
      const token = await signCompact(signer, header(), claimsAt({ nbf: T0_SECONDS + 60 }));
      clock.set(T0.getTime());
      await refused(token, 'not_yet_valid');
    });

    it('not_yet_valid: iat in the future (no nbf)', async () => {
      const token = await signCompact(signer, header(), claimsAt({ iat: T0_SECONDS + 60, nbf: undefined, exp: T0_SECONDS + 120 }));
      clock.set(T0.getTime());
      await refused(token, 'not_yet_valid');
    });

    it('audience: a token for another audience (string or array)', async () => {
      expect(await refused(await unbound(), 'audience', { audience: 'storage.detections' })).to.include('"storage.detections"');
      clock.set(T0.getTime());
      await refused(await signCompact(signer, header(), claimsAt({ aud: ['queue.jobs'] })), 'audience');
    });

    it('scope: a required scope the token lacks (message names it)', async () => {
      const message = await refused(await unbound(), 'scope', { scopes: ['media.source.read', 'media.source.delete'] });
      expect(message).to.include('"media.source.delete"');
      expect(message).not.to.include('"media.source.read"');
    });

    it('binding: a bound token presented with another certificate', async () => {
      await refused(await bound(), 'binding', { clientCertificate: otherCertificate });
      await refused(await bound(), 'binding', { clientCertificate: pemOf(otherCertificate) });
    });

    it('binding: a bound token presented without a certificate', async () => {
      expect(await refused(await bound(), 'binding')).to.match(/none was presented/);
    });

    it('binding: an unbound token where binding is required', async () => {
      await refused(await unbound(), 'binding', { requireBinding: true, clientCertificate: certificate });
    });

    it('binding: a confirmation method other than x5t#S256, and a presented "certificate" that is not PEM', async () => {
      clock.set(T0.getTime());
      await refused(await signCompact(signer, header(), claimsAt({ cnf: { jkt: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' } })), 'binding', { clientCertificate: certificate });
      await refused(await bound(), 'binding', { clientCertificate: 'not a certificate' });
    });

    it('unknown_kid: a token signed by a key the JWK Set does not hold', async () => {
      const token = (await stranger.issue({ subject: SUBJECT, audience: AUDIENCE, scopes: ['media.source.read'], ttlMs: 300_000, now: T0 })).token;
      expect(await refused(token, 'unknown_kid')).to.include(stranger.kid);
    });

    it('signature: a tampered signature, a tampered payload, a signature by another key under our kid', async () => {
      const token = await unbound();
      const [head, payload, signature] = token.split('.') as [string, string, string];
      const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
      await refused(`${head}.${payload}.${flipped}`, 'signature');
      const widened = encodeJson({ ...(JSON.parse(Buffer.from(payload, 'base64url').toString()) as object), scope: 'media.source.read media.source.delete' });
      await refused(`${head}.${widened}.${signature}`, 'signature');
      clock.set(T0.getTime());
      await refused(await signCompact(strangerSigner, header(), claimsAt()), 'signature');
    });

    it('algorithm: alg "none", with or without a signature', async () => {
      const payload = encodeJson(claimsAt());
      const none = `${encodeJson({ alg: 'none', typ: 'at+jwt' })}.${payload}.`;
      expect(await refused(none, 'algorithm')).to.include('"none"');
      const signed = await signCompact(signer, header({ alg: 'none' }), claimsAt());
      await refused(signed, 'algorithm');
      const noAlg = await signCompact(signer, header({ alg: undefined }), claimsAt());
      expect(await refused(noAlg, 'algorithm')).to.include('no alg');
    });

    it('algorithm: HS256 signed with a guessed key (the public key, PEM or JWK)', async () => {
      clock.set(T0.getTime());
      const guesses = [signer.publicKey.export({ format: 'pem', type: 'spki' }), JSON.stringify(issuer.jwk), issuer.jwk.x ?? ''];
      for (const guess of guesses) {
        const signingInput = `${encodeJson(header({ alg: 'HS256' }))}.${encodeJson(claimsAt())}`;
        const token = `${signingInput}.${createHmac('sha256', guess).update(signingInput).digest('base64url')}`;
        await refused(token, 'algorithm');
      }
    });

    it('algorithm: an alg the key with that kid is not for', async () => {
      clock.set(T0.getTime());
      expect(await refused(await signCompact(signer, header({ alg: 'ES384' }), claimsAt()), 'algorithm')).to.match(/verifies ES256, the token says ES384/);
      await refused(await signCompact(signer, header({ alg: 'RS256' }), claimsAt()), 'algorithm');
    });

    it('type: typ missing or not at+jwt', async () => {
      clock.set(T0.getTime());
      expect(await refused(await signCompact(signer, header({ typ: undefined }), claimsAt()), 'type')).to.include('missing');
      await refused(await signCompact(signer, header({ typ: 'JWT' }), claimsAt()), 'type');
      await refused(await signCompact(signer, header({ typ: 'application/jwt' }), claimsAt()), 'type');
    });

    it('too_long: a lifetime above maxTtlSeconds (accepted by a verifier that allows it)', async () => {
      // TokenIssuer never mints beyond 1 h; a broker of another make (or a bug) might.
      const token = await signCompact(signer, header(), claimsAt({ exp: T0_SECONDS + 7200 }));
      expect(await refused(token, 'too_long')).to.include('7200 s');
      const lenient = new TokenVerifier({ issuer: ISSUER, jwks, clock, maxTtlSeconds: 7200 });
      expect((await lenient.verify(token, { audience: AUDIENCE })).subject).to.equal(SUBJECT);
      const strict = new TokenVerifier({ issuer: ISSUER, jwks, clock, maxTtlSeconds: 299 });
      await refused(await unbound(), 'too_long', {}, strict);
    });

    it('issuer: a token from another issuer, or without iss', async () => {
      const other = new TokenVerifier({ issuer: 'spiffe://other.test/credbroker', jwks, clock });
      await refused(await unbound(), 'issuer', {}, other);
      clock.set(T0.getTime());
      expect(await refused(await signCompact(signer, header(), claimsAt({ iss: undefined })), 'issuer')).to.include('names no issuer');
    });

    it('malformed: not a compact JWS, bad encodings, missing claims, crit, no kid', async () => {
      clock.set(T0.getTime());
      const good = await unbound();
      const [head, payload, signature] = good.split('.') as [string, string, string];
      // The last character of an ES256 signature carries 4 bits; changing the 2 spare bits
      // gives another string for the same bytes.
      const last = signature.at(-1) ?? 'A';
      const alias = String.fromCharCode(last.charCodeAt(0) ^ 1);
      const cases: string[] = [
        '',
        'x',
        `${head}.${payload}`,
        `${head}.${payload}.${signature}.${signature}`,
        `${head}.${payload}.${signature.slice(0, -1)}${alias}`,
        `${head}.${payload}.${signature}=`,
        `${head}.${payload}!.${signature}`,
        `${encodeJson([1])}.${payload}.${signature}`,
        `${Buffer.from('{"alg":').toString('base64url')}.${payload}.${signature}`,
        `${head}.${payload}.${signature}`.padEnd(8193, 'A'),
        await signCompact(signer, header({ kid: undefined }), claimsAt()),
        await signCompact(signer, header({ crit: ['exp'] }), claimsAt()),
        await signCompact(signer, header(), claimsAt({ jti: undefined })),
        await signCompact(signer, header(), claimsAt({ sub: undefined })),
        await signCompact(signer, header(), claimsAt({ client_id: 42 })),
        await signCompact(signer, header(), claimsAt({ exp: undefined })),
        await signCompact(signer, header(), claimsAt({ iat: '1772366400' })),
        await signCompact(signer, header(), claimsAt({ scope: ['media.source.read'] })),
        await signCompact(signer, header(), claimsAt({ scope: 'media.source.read  media.source.list' })),
        await signCompact(signer, header(), claimsAt({ cnf: { 'x5t#S256': 'c2hvcnQ' } })),
        await signCompact(signer, header(), claimsAt({ cnf: 'x5t' })),
      ];
      // A signed payload that is not JSON.
      const notJsonInput = `${encodeJson(header())}.${Buffer.from('not json').toString('base64url')}`;
      cases.push(`${notJsonInput}.${Buffer.from(await signer.sign(Buffer.from(notJsonInput))).toString('base64url')}`);
      expect(cases[4]).not.to.equal(good);
      for (const token of cases) await refused(token, 'malformed', { clientCertificate: certificate });
    });

    it('every refusal code has been produced by a real token above', () => {
      expect([...seen].sort()).to.deep.equal([...TOKEN_VERIFICATION_ERROR_CODES].sort());
    });
  });

  describe('agrees with jose jwtVerify on the checks both make', () => {
    it('accepts and refuses the same tokens', async () => {
      clock.set(T0.getTime());
      const hmacInput = `${encodeJson(header({ alg: 'HS256' }))}.${encodeJson(claimsAt())}`;
      const good = await signCompact(signer, header(), claimsAt());
      const [head, payload, signature] = good.split('.') as [string, string, string];
      const cases: [string, string, number][] = [
        ['valid', good, 0],
        ['valid at the tolerance edge', good, 304_999],
        ['expired at the tolerance edge', good, 305_000],
        ['long expired', good, 86_400_000],
        ['nbf ahead', await signCompact(signer, header(), claimsAt({ nbf: T0_SECONDS + 60 })), 0],
        ['nbf ahead within tolerance', await signCompact(signer, header(), claimsAt({ nbf: T0_SECONDS + 5 })), 0],
        ['iat ahead', await signCompact(signer, header(), claimsAt({ iat: T0_SECONDS + 30, nbf: undefined })), 0],
        ['another issuer', await signCompact(signer, header(), claimsAt({ iss: 'spiffe://other.test/x' })), 0],
        ['another audience', await signCompact(signer, header(), claimsAt({ aud: 'queue.jobs' })), 0],
        ['audience array', await signCompact(signer, header(), claimsAt({ aud: ['queue.jobs', AUDIENCE] })), 0],
        ['typ missing', await signCompact(signer, header({ typ: undefined }), claimsAt()), 0],
        ['typ JWT', await signCompact(signer, header({ typ: 'JWT' }), claimsAt()), 0],
        ['typ application/at+jwt', await signCompact(signer, header({ typ: 'application/at+jwt' }), claimsAt()), 0],
        ['alg none', `${encodeJson({ alg: 'none', typ: 'at+jwt' })}.${payload}.`, 0],
        ['HS256', `${hmacInput}.${createHmac('sha256', JSON.stringify(issuer.jwk)).update(hmacInput).digest('base64url')}`, 0],
        ['tampered payload', `${head}.${encodeJson(claimsAt({ scope: 'all' }))}.${signature}`, 0],
        ['unknown kid', await signCompact(strangerSigner, header({ kid: stranger.kid }), claimsAt()), 0],
        ['another key under our kid', await signCompact(strangerSigner, header(), claimsAt()), 0],
        ['alg of another curve', await signCompact(signer, header({ alg: 'ES384' }), claimsAt()), 0],
        ['crit', await signCompact(signer, header({ crit: ['exp'] }), claimsAt()), 0],
        ['no jti', await signCompact(signer, header(), claimsAt({ jti: undefined })), 0],
        ['no exp', await signCompact(signer, header(), claimsAt({ exp: undefined })), 0],
      ];
      const keySet = createLocalJWKSet(jwks);
      const disagreements: string[] = [];
      for (const [name, token, offsetMs] of cases) {
        clock.set(T0.getTime() + offsetMs);
        const ours = await verifier.verify(token, { audience: AUDIENCE }).then(
          () => true,
          () => false,
        );
        const theirs = await jwtVerify(token, keySet, {
          issuer: ISSUER,
          audience: AUDIENCE,
          typ: 'at+jwt',
          algorithms: ['ES256', 'ES384', 'EdDSA', 'RS256'],
          currentDate: clock.now(),
          clockTolerance: 5,
          maxTokenAge: 3600,
          requiredClaims: ['iss', 'sub', 'client_id', 'aud', 'exp', 'iat', 'jti', 'scope'],
        }).then(
          () => true,
          () => false,
        );
        if (ours !== theirs) disagreements.push(`${name}: ours ${ours}, jose ${theirs}`);
      }
      expect(disagreements).to.deep.equal([]);
      // Both accepted the valid ones (a verifier refusing everything would agree on nothing).
      clock.set(T0.getTime());
      expect((await verifier.verify(good, { audience: AUDIENCE })).subject).to.equal(SUBJECT);
    });
  });

  describe('configuration', () => {
    it('refuses an empty issuer, a tolerance outside 0..300 s, a non-positive maxTtlSeconds, a JWK Set without keys', async () => {
      const bad: (() => unknown)[] = [
        () => new TokenVerifier({ issuer: '', jwks }),
        () => new TokenVerifier({ issuer: ISSUER, jwks, clockToleranceSeconds: -1 }),
        () => new TokenVerifier({ issuer: ISSUER, jwks, clockToleranceSeconds: 301 }),
        () => new TokenVerifier({ issuer: ISSUER, jwks, maxTtlSeconds: 0 }),
        () => new TokenVerifier({ issuer: ISSUER, jwks: {} as JSONWebKeySet }),
        () => new TokenVerifier({ issuer: ISSUER, jwks: { keys: 'none' } as unknown as JSONWebKeySet }),
      ];
      for (const make of bad) expect((await catchBrokerError(make)).kind).to.equal('invalid');
    });

    it('refuses an empty expected audience (a service bug, not a bad token)', async () => {
      const error = await catchBrokerError(verifier.verify(await unbound(), { audience: '' }));
      expect(error).to.include({ kind: 'invalid', code: 'tokens.verifier' });
    });
  });
});
