import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { BrokerError, KEY_TYPES, ManualClock, SoftwareSigner, type KeyType, type RandomSource, type Signer } from '../../../src/core/index.js';
import { TokenIssuer, TokenVerifier, certificateSha256, jwkThumbprint, jwksOf, type TokenRequest } from '../../../src/tokens/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { AUDIENCE, ISSUER, SUBJECT, T0, T0_SECONDS, fakeCertificate } from './token-fixtures.js';

function decodePart(token: string, index: number): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

const REQUEST: TokenRequest = { subject: SUBJECT, audience: AUDIENCE, scopes: ['media.source.read'], ttlMs: 300_000, now: T0 };

describe('tokens/TokenIssuer', () => {
  const signers = new Map<KeyType, SoftwareSigner>();

  before(async () => {
    for (const keyType of KEY_TYPES) signers.set(keyType, await SoftwareSigner.generate(keyType));
  });

  function signerOf(keyType: KeyType): SoftwareSigner {
    const signer = signers.get(keyType);
    if (signer === undefined) throw new Error(`no ${keyType} signer`);
    return signer;
  }

  for (const keyType of KEY_TYPES) {
    it(`${keyType}: mints a token that jose and TokenVerifier accept, with the RFC 9068 header and claims`, async () => {
      const signer = signerOf(keyType);
      const issuer = await TokenIssuer.create({ signer, issuer: ISSUER, random: new SeededRandom(keyType) });
      const certificate = fakeCertificate(`client of ${keyType}`);
      const issued = await issuer.issue({ ...REQUEST, scopes: ['media.source.read', 'media.source.list'], certificateSha256: certificateSha256(certificate) });

      expect(issuer.algorithm).to.equal(signer.algorithm);
      expect(decodePart(issued.token, 0)).to.deep.equal({ alg: signer.algorithm, kid: issuer.kid, typ: 'at+jwt' });
      expect(decodePart(issued.token, 1)).to.deep.equal({
        iss: ISSUER,
        sub: SUBJECT,
        client_id: SUBJECT,
        aud: AUDIENCE,
        scope: 'media.source.read media.source.list',
        iat: T0_SECONDS,
        nbf: T0_SECONDS,
        exp: T0_SECONDS + 300,
        jti: issued.jti,
        cnf: { 'x5t#S256': createHash('sha256').update(certificate).digest('base64url') },
      });
      expect(issued).to.include({ bound: true, kid: issuer.kid });
      expect(issued.issuedAt.toISOString()).to.equal(T0.toISOString());
      expect(issued.expiresAt.getTime()).to.equal(T0.getTime() + 300_000);

      // jose on its own, from the published JWK Set.
      const { payload, protectedHeader } = await jwtVerify(issued.token, createLocalJWKSet(jwksOf([issuer])), {
        issuer: ISSUER,
        audience: AUDIENCE,
        typ: 'at+jwt',
        algorithms: [signer.algorithm],
        currentDate: new Date(T0.getTime() + 1000),
      });
      expect(protectedHeader.kid).to.equal(issuer.kid);
      expect(payload.sub).to.equal(SUBJECT);

      const verifier = new TokenVerifier({ issuer: ISSUER, jwks: jwksOf([issuer]), clock: new ManualClock(T0.getTime() + 1000) });
      const verified = await verifier.verify(issued.token, { audience: AUDIENCE, scopes: ['media.source.list'], clientCertificate: certificate, requireBinding: true });
      expect(verified).to.deep.include({ subject: SUBJECT, clientId: SUBJECT, audience: AUDIENCE, jti: issued.jti, bound: true, kid: issuer.kid, algorithm: signer.algorithm });
      expect(verified.scopes).to.deep.equal(['media.source.read', 'media.source.list']);
      expect(verified.expiresAt.getTime()).to.equal(issued.expiresAt.getTime());
    });

    it(`${keyType}: kid is the RFC 7638 thumbprint of the public key, as jose computes it independently`, async () => {
      const signer = signerOf(keyType);
      const issuer = await TokenIssuer.create({ signer, issuer: ISSUER, random: new SeededRandom('kid') });
      expect(issuer.kid).to.equal(await calculateJwkThumbprint(signer.publicKey.export({ format: 'jwk' })));
      expect(issuer.kid).to.equal(jwkThumbprint(issuer.jwk));
      expect(issuer.kid).to.match(/^[A-Za-z0-9_-]{43}$/);
    });
  }

  it('publishes a public JWK with kid, alg and use "sig" and nothing private', async () => {
    const expectedMembers: Record<KeyType, string[]> = {
      'P-256': ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'],
      'P-384': ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'],
      'RSA-3072': ['alg', 'e', 'kid', 'kty', 'n', 'use'],
      Ed25519: ['alg', 'crv', 'kid', 'kty', 'use', 'x'],
    };
    for (const keyType of KEY_TYPES) {
      const signer = signerOf(keyType);
      const issuer = await TokenIssuer.create({ signer, issuer: ISSUER, random: new SeededRandom('jwk') });
      expect(Object.keys(issuer.jwk).sort(), keyType).to.deep.equal(expectedMembers[keyType]);
      expect(issuer.jwk).to.include({ kid: issuer.kid, alg: signer.algorithm, use: 'sig' });
      expect(Object.isFrozen(issuer.jwk)).to.equal(true);
    }
  });

  it('draws the jti from the RandomSource: 16 bytes, base64url, fresh for every token', async () => {
    const issuer = await TokenIssuer.create({ signer: signerOf('P-256'), issuer: ISSUER, random: new SeededRandom('jti') });
    const expected = new SeededRandom('jti');
    const first = await issuer.issue(REQUEST);
    const second = await issuer.issue(REQUEST);
    expect(first.jti).to.equal(expected.bytes(16).toString('base64url'));
    expect(second.jti).to.equal(expected.bytes(16).toString('base64url'));
    expect(first.jti).to.have.length(22);
    expect(first.jti).not.to.equal(second.jti);
  });

  it('rounds iat down to the second and adds the whole seconds of the TTL; unbound without a certificate hash', async () => {
    const issuer = await TokenIssuer.create({ signer: signerOf('P-256'), issuer: ISSUER, random: new SeededRandom('time') });
    const issued = await issuer.issue({ ...REQUEST, now: new Date(T0.getTime() + 999), ttlMs: 61_999 });
    const claims = decodePart(issued.token, 1);
    expect(claims).to.include({ iat: T0_SECONDS, nbf: T0_SECONDS, exp: T0_SECONDS + 61 });
    expect(claims).not.to.have.property('cnf');
    expect(issued.bound).to.equal(false);
    expect(issued.issuedAt.getTime()).to.equal(T0.getTime());
    expect(issued.expiresAt.getTime()).to.equal(T0.getTime() + 61_000);
  });

  it('accepts exactly the 1 h hard cap', async () => {
    const issuer = await TokenIssuer.create({ signer: signerOf('P-256'), issuer: ISSUER, random: new SeededRandom('cap') });
    const issued = await issuer.issue({ ...REQUEST, ttlMs: 3_600_000 });
    expect(decodePart(issued.token, 1).exp).to.equal(T0_SECONDS + 3600);
  });

  it('sends each scope once, in the order asked', async () => {
    const issuer = await TokenIssuer.create({ signer: signerOf('P-256'), issuer: ISSUER, random: new SeededRandom('scopes') });
    const issued = await issuer.issue({ ...REQUEST, scopes: ['b', 'a', 'b'] });
    expect(decodePart(issued.token, 1).scope).to.equal('b a');
  });

  it('uses the header it announced: every token of one issuer starts with the same encoded header', async () => {
    const issuer = await TokenIssuer.create({ signer: signerOf('Ed25519'), issuer: ISSUER, random: new SeededRandom('header') });
    const first = await issuer.issue(REQUEST);
    const second = await issuer.issue({ ...REQUEST, audience: 'queue.jobs' });
    expect(first.token.split('.')[0]).to.equal(second.token.split('.')[0]);
    expect(decodeProtectedHeader(first.token)).to.deep.equal({ alg: 'EdDSA', kid: issuer.kid, typ: 'at+jwt' });
  });

  describe('refuses bad requests', () => {
    const cases: [string, Partial<TokenRequest>, 'invalid' | 'internal'][] = [
      ['ttlMs 0', { ttlMs: 0 }, 'invalid'],
      ['ttlMs negative', { ttlMs: -5000 }, 'invalid'],
      ['ttlMs fractional', { ttlMs: 1500.5 }, 'invalid'],
      ['ttlMs below one second', { ttlMs: 999 }, 'invalid'],
      ['ttlMs NaN', { ttlMs: Number.NaN }, 'invalid'],
      ['ttlMs infinite', { ttlMs: Number.POSITIVE_INFINITY }, 'invalid'],
      ['ttlMs above the 1 h hard cap', { ttlMs: 3_600_001 }, 'invalid'],
      ['no scopes', { scopes: [] }, 'invalid'],
      ['an empty scope', { scopes: ['media.source.read', ''] }, 'invalid'],
      ['a scope with a space', { scopes: ['media.source.read media.source.write'] }, 'invalid'],
      ['an empty subject', { subject: '' }, 'invalid'],
      ['an audience with whitespace', { audience: 'storage.source\n' }, 'invalid'],
      ['a 31-byte certificate hash', { certificateSha256: new Uint8Array(31) }, 'internal'],
      ['a 33-byte certificate hash', { certificateSha256: new Uint8Array(33) }, 'internal'],
      ['an invalid Date', { now: new Date(Number.NaN) }, 'internal'],
    ];
    for (const [name, change, kind] of cases) {
      it(`${name}: ${kind}`, async () => {
        const issuer = await TokenIssuer.create({ signer: signerOf('P-256'), issuer: ISSUER, random: new SeededRandom('bad') });
        const error = await catchBrokerError(issuer.issue({ ...REQUEST, ...change }));
        expect(error.kind).to.equal(kind);
        expect(error.code).to.equal('tokens.request');
      });
    }

    it('a random source that returns too few bytes: internal', async () => {
      const short: RandomSource = { bytes: (n: number) => Buffer.alloc(n - 1) };
      const issuer = await TokenIssuer.create({ signer: signerOf('P-256'), issuer: ISSUER, random: short });
      const error = await catchBrokerError(issuer.issue(REQUEST));
      expect(error).to.include({ kind: 'internal', code: 'tokens.request' });
    });
  });

  describe('guards the signer', () => {
    it('refuses an empty issuer', async () => {
      const error = await catchBrokerError(TokenIssuer.create({ signer: signerOf('P-256'), issuer: '', random: new SeededRandom('x') }));
      expect(error).to.include({ kind: 'invalid', code: 'tokens.issuer' });
    });

    it('refuses a signer whose public key is not the key it signs with', async () => {
      const real = signerOf('P-256');
      const other = await SoftwareSigner.generate('P-256');
      const liar: Signer = { algorithm: real.algorithm, keyType: real.keyType, publicKey: other.publicKey, description: 'liar', sign: (data) => real.sign(data) };
      const error = await catchBrokerError(TokenIssuer.create({ signer: liar, issuer: ISSUER, random: new SeededRandom('x') }));
      expect(error).to.include({ kind: 'internal', code: 'tokens.signer' });
    });

    it('refuses a signer whose algorithm does not fit its key type', async () => {
      const real = signerOf('P-384');
      const liar: Signer = { algorithm: 'ES256', keyType: real.keyType, publicKey: real.publicKey, description: 'liar', sign: (data) => real.sign(data) };
      const error = await catchBrokerError(TokenIssuer.create({ signer: liar, issuer: ISSUER, random: new SeededRandom('x') }));
      expect(error).to.include({ kind: 'internal', code: 'tokens.signer' });
    });

    it('passes an unavailable HSM through as unavailable, other sign failures as internal, short signatures as internal', async () => {
      const real = signerOf('P-256');
      let mode: 'ok' | 'down' | 'bug' | 'short' = 'ok';
      const flaky: Signer = {
        algorithm: real.algorithm,
        keyType: real.keyType,
        publicKey: real.publicKey,
        description: 'flaky',
        sign: async (data) => {
          if (mode === 'down') throw new BrokerError('unavailable', { code: 'hsm.session_lost', publicMessage: 'HSM unavailable' });
          if (mode === 'bug') throw new TypeError('boom');
          const signature = await real.sign(data);
          return mode === 'short' ? signature.subarray(0, 63) : signature;
        },
      };
      const issuer = await TokenIssuer.create({ signer: flaky, issuer: ISSUER, random: new SeededRandom('flaky') });
      mode = 'down';
      expect(await catchBrokerError(issuer.issue(REQUEST))).to.include({ kind: 'unavailable', code: 'hsm.session_lost' });
      mode = 'bug';
      const bug = await catchBrokerError(issuer.issue(REQUEST));
      expect(bug).to.include({ kind: 'internal', code: 'tokens.signature', publicMessage: 'internal error' });
      mode = 'short';
      expect(await catchBrokerError(issuer.issue(REQUEST))).to.include({ kind: 'internal', code: 'tokens.signature' });
    });
  });
});
