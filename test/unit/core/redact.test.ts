import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { REDACTION, scrubSecrets, scrubValue } from '../../../src/core/index.js';

describe('core/redact', () => {
  const jws = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly94In0.c2lnbmF0dXJlc2lnbmF0dXJl';
  const joinToken = 'cbjt1-Q2hQ4vX9kLmN0pRsTuVwXyZ012345';
  const keyPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

  it('replaces join tokens, JWS and PEM private keys inside any text, keeping the rest', () => {
    const text = `token ${joinToken} and bearer ${jws}; key:\n${keyPem}end`;
    const scrubbed = scrubSecrets(text);
    expect(scrubbed).to.equal(`token ${REDACTION} and bearer ${REDACTION}; key:\n${REDACTION}\nend`);
  });

  it('replaces a PEM block cut short, and a certificate request', () => {
    expect(scrubSecrets(`x ${keyPem.slice(0, 80)}`)).to.equal(`x ${REDACTION}`);
    expect(scrubSecrets('-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----')).to.equal(REDACTION);
  });

  it('leaves certificates, serials, token ids and SPIFFE IDs alone', () => {
    const text = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE----- serial 7f00ab tokenId 0123abcd spiffe://anonymizer.local/pipeline/import';
    expect(scrubSecrets(text)).to.equal(text);
  });

  it('scrubs every string of a nested value, summarises bytes, survives cycles', () => {
    const cyclic: Record<string, unknown> = { error: new Error(`bad ${joinToken}`), list: [jws, 1, null], bytes: Buffer.alloc(5) };
    cyclic.self = cyclic;
    expect(scrubValue({ outer: cyclic })).to.deep.equal({ outer: { error: `bad ${REDACTION}`, list: [REDACTION, 1, null], bytes: '[5 bytes]', self: '[…]' } });
  });
});
