import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import type { JWK } from 'jose';
import { BrokerError, SoftwareSigner } from '../../../src/core/index.js';
import { KeyRing, TokenIssuer, jwkThumbprint, publicJwkOf } from '../../../src/tokens/index.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { ISSUER } from './token-fixtures.js';

function jwkOf(key: ReturnType<typeof generateKeyPairSync>['publicKey'], extra: Record<string, unknown>): JWK {
  return { ...(key.export({ format: 'jwk' }) as JWK), ...extra };
}

describe('tokens/KeyRing', () => {
  it('imports the usable keys and skips every key credbroker tokens cannot use (RFC 7517 §5)', async () => {
    const good = await TokenIssuer.create({ signer: await SoftwareSigner.generate('P-384'), issuer: ISSUER, random: new SeededRandom('ring') });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const ed = generateKeyPairSync('ed25519');
    const skipped: JWK[] = [
      { kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQ', kid: 'hmac', alg: 'HS256' },
      jwkOf(ec.privateKey, { kid: 'private' }),
      jwkOf(ec.publicKey, { kid: 'encryption', use: 'enc' }),
      jwkOf(ec.publicKey, { kid: 'sign-only', key_ops: ['sign'] }),
      jwkOf(ec.publicKey, { kid: 'wrong-alg', alg: 'ES384' }),
      jwkOf(ec.publicKey, { kid: 'hmac-alg', alg: 'HS256' }),
      jwkOf(p521.publicKey, { kid: 'p521' }),
      jwkOf(rsa1024.publicKey, { kid: 'rsa1024', alg: 'RS256' }),
      jwkOf(ed.publicKey, { kid: 'twice' }),
      jwkOf(ec.publicKey, { kid: 'twice' }),
      jwkOf(ec.publicKey, {}),
      { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA', kid: 'off-curve' },
    ];
    const edUsable = jwkOf(ed.publicKey, { kid: 'ed-no-alg' });
    const ring = await KeyRing.fromJwks({ keys: [...skipped, good.jwk, edUsable] });
    expect(ring.kids()).to.deep.equal([good.kid, 'ed-no-alg']);
    expect(ring.get(good.kid)?.algorithm).to.equal('ES384');
    expect(ring.get('ed-no-alg')?.algorithm).to.equal('EdDSA');
    expect(jwkThumbprint(publicJwkOf(ring.get(good.kid)?.publicKey ?? ec.publicKey))).to.equal(good.kid);
    for (const jwk of skipped) if (jwk.kid !== undefined) expect(ring.get(jwk.kid), jwk.kid).to.equal(undefined);
  });

  it('throws at once (not a rejection) for something that is not a JWK Set', () => {
    for (const bad of [null, 'keys', [], {}, { keys: {} }, { keys: [1] }, { keys: [null] }]) {
      let thrown: unknown;
      try {
        void KeyRing.fromJwks(bad);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, JSON.stringify(bad)).to.be.instanceOf(BrokerError);
      expect(thrown).to.include({ kind: 'invalid', code: 'tokens.jwks' });
    }
  });
});
