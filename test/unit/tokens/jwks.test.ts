import { expect } from 'chai';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { KEY_TYPES, SoftwareSigner } from '../../../src/core/index.js';
import {
  TokenIssuer,
  certificateDerFromPem,
  certificateSha256,
  certificateThumbprint,
  certificateThumbprintFromPem,
  jwkThumbprint,
  jwksJson,
  jwksOf,
  publicJwkOf,
} from '../../../src/tokens/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { ISSUER, fakeCertificate, pemOf } from './token-fixtures.js';

/** RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint. */
const RFC7638_JWK: JWK = {
  kty: 'RSA',
  n:
    '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
  e: 'AQAB',
  alg: 'RS256',
  kid: '2011-04-29',
};
const RFC7638_THUMBPRINT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';

describe('tokens/jwks', () => {
  describe('jwkThumbprint', () => {
    it('gives the RFC 7638 §3.1 example thumbprint, ignoring alg and kid', async () => {
      expect(jwkThumbprint(RFC7638_JWK)).to.equal(RFC7638_THUMBPRINT);
      expect(jwkThumbprint({ kty: 'RSA', e: 'AQAB', n: RFC7638_JWK.n ?? '' })).to.equal(RFC7638_THUMBPRINT);
      expect(await calculateJwkThumbprint(RFC7638_JWK)).to.equal(RFC7638_THUMBPRINT);
    });

    for (const keyType of KEY_TYPES) {
      it(`${keyType}: equals jose's calculateJwkThumbprint`, async () => {
        const signer = await SoftwareSigner.generate(keyType);
        const jwk = publicJwkOf(signer.publicKey);
        expect(jwkThumbprint({ ...jwk, kid: 'ignored', use: 'sig' })).to.equal(await calculateJwkThumbprint(jwk));
      });
    }

    it('refuses symmetric keys and keys with a member missing', async () => {
      expect((await catchBrokerError(() => jwkThumbprint({ kty: 'oct', k: 'c2VjcmV0' })))).to.include({ kind: 'invalid', code: 'tokens.jwk' });
      expect((await catchBrokerError(() => jwkThumbprint({ kty: 'EC', crv: 'P-256', x: 'AA' })))).to.include({ kind: 'invalid', code: 'tokens.jwk' });
    });
  });

  describe('jwksOf and jwksJson', () => {
    let first: TokenIssuer;
    let second: TokenIssuer;

    before(async () => {
      first = await TokenIssuer.create({ signer: await SoftwareSigner.generate('P-256'), issuer: ISSUER, random: new SeededRandom('1') });
      second = await TokenIssuer.create({ signer: await SoftwareSigner.generate('Ed25519'), issuer: ISSUER, random: new SeededRandom('2') });
    });

    it('lists issuers and JWKs in the order given, each key once, as copies', () => {
      const set = jwksOf([first, second.jwk, first]);
      expect(set.keys.map((jwk) => jwk.kid)).to.deep.equal([first.kid, second.kid]);
      expect(set.keys[0]).to.deep.equal(first.jwk);
      expect(set.keys[0]).not.to.equal(first.jwk);
    });

    it('refuses to publish a private key, a key without kid, or two keys under one kid', async () => {
      const withD = { ...first.jwk, d: 'c2VjcmV0' };
      expect(await catchBrokerError(() => jwksOf([withD]))).to.include({ kind: 'internal', code: 'tokens.jwks' });
      const noKid: JWK = { ...first.jwk };
      delete noKid.kid;
      expect(await catchBrokerError(() => jwksOf([noKid]))).to.include({ kind: 'internal', code: 'tokens.jwks' });
      const impostor = { ...second.jwk, kid: first.kid };
      expect(await catchBrokerError(() => jwksOf([first, impostor]))).to.include({ kind: 'internal', code: 'tokens.jwks' });
    });

    it('serializes to JSON that depends on content only (member order does not matter)', () => {
      const reordered: JWK = {};
      const source = first.jwk as Record<string, unknown>;
      for (const name of Object.keys(source).reverse()) (reordered as Record<string, unknown>)[name] = source[name];
      const json = jwksJson(jwksOf([first, second]));
      expect(jwksJson(jwksOf([reordered, second.jwk]))).to.equal(json);
      expect(JSON.parse(json)).to.deep.equal({ keys: [first.jwk, second.jwk] });
      expect(json).not.to.match(/\s/);
      expect(json.indexOf('"alg"')).to.be.lessThan(json.indexOf('"kty"'));
    });
  });

  describe('certificate thumbprints', () => {
    it('x5t#S256 is the base64url SHA-256 of the DER (known answer)', () => {
      const der = Buffer.from('abc');
      expect(certificateThumbprint(der)).to.equal('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
      expect(certificateSha256(der).toString('hex')).to.equal('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    });

    it('from PEM: the same as from DER; the first certificate of a chain; CRLF line ends', () => {
      const leaf = fakeCertificate('leaf');
      const intermediate = fakeCertificate('intermediate');
      expect(certificateThumbprintFromPem(pemOf(leaf))).to.equal(certificateThumbprint(leaf));
      expect(certificateThumbprintFromPem(pemOf(leaf) + pemOf(intermediate))).to.equal(certificateThumbprint(leaf));
      expect(certificateThumbprintFromPem(pemOf(leaf).replace(/\n/g, '\r\n'))).to.equal(certificateThumbprint(leaf));
      expect(certificateDerFromPem(pemOf(leaf)).equals(leaf)).to.equal(true);
    });

    it('refuses text without a well-formed CERTIFICATE block', async () => {
      const leaf = fakeCertificate('leaf');
      const bad = [
        '',
        'not a pem',
        pemOf(leaf, 'PRIVATE KEY'),
        pemOf(Buffer.from([0x02, 0x01, 0x00])),
        pemOf(leaf).replace('\n-----END', '!!\n-----END'),
        `-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n`,
      ];
      for (const text of bad) {
        const error = await catchBrokerError(() => certificateThumbprintFromPem(text));
        expect(error, text).to.include({ kind: 'invalid', code: 'tokens.certificate_pem' });
      }
    });
  });
});
