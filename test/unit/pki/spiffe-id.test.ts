import { expect } from 'chai';
import { MAX_SPIFFE_ID_BYTES, parseSpiffeId, parseTrustDomain, sameSpiffeId } from '../../../src/pki/index.js';
import { expectBrokerError } from './pki-fixtures.js';

describe('pki/spiffe-id', () => {
  describe('parseSpiffeId accepts', () => {
    const valid: [string, string, string][] = [
      ['spiffe://anonymizer.test/media/blur', 'anonymizer.test', '/media/blur'],
      ['spiffe://anonymizer.test', 'anonymizer.test', ''],
      ['spiffe://td/a', 'td', '/a'],
      ['spiffe://a-b_c.0/Upper.Case-and_under/9', 'a-b_c.0', '/Upper.Case-and_under/9'],
      ['spiffe://td/...', 'td', '/...'],
      ['spiffe://td/.hidden', 'td', '/.hidden'],
      [`spiffe://td/${'a'.repeat(MAX_SPIFFE_ID_BYTES - 'spiffe://td/'.length)}`, 'td', `/${'a'.repeat(MAX_SPIFFE_ID_BYTES - 'spiffe://td/'.length)}`],
    ];
    for (const [text, trustDomain, path] of valid) {
      it(text.slice(0, 60), () => {
        const id = parseSpiffeId(text);
        expect(id.trustDomain).to.equal(trustDomain);
        expect(id.path).to.equal(path);
        expect(id.toString()).to.equal(text);
        expect(String(id)).to.equal(text);
        expect(JSON.stringify({ id })).to.equal(JSON.stringify({ id: text }));
        expect(Object.isFrozen(id)).to.equal(true);
      });
    }
  });

  describe('parseSpiffeId refuses, saying why', () => {
    const invalid: [string, RegExp][] = [
      ['', /is empty/],
      ['anonymizer.test/blur', /must start with "spiffe:\/\/"/],
      ['https://anonymizer.test/blur', /must start with "spiffe:\/\/"/],
      ['SPIFFE://anonymizer.test/blur', /lowercase scheme/],
      ['spiffe:/anonymizer.test/blur', /must start with "spiffe:\/\/"/],
      ['spiffe:///blur', /trust domain that is missing/],
      ['spiffe://', /trust domain that is missing/],
      ['spiffe://Anonymizer.test/blur', /uppercase letter "A"/],
      ['spiffe://anon ymizer.test/blur', /has " ": trust domains may hold only/],
      ['spiffe://anonymizer.test:8443/blur', /must not have a port/],
      ['spiffe://user@anonymizer.test/blur', /must not have userinfo/],
      ['spiffe://user:pw@anonymizer.test/blur', /must not have userinfo/],
      ['spiffe://anonymizer.test/blur?x=1', /must not have a query/],
      ['spiffe://anonymizer.test/blur#frag', /must not have a fragment/],
      ['spiffe://anonymizer.test/bl%75r', /percent-encoding/],
      ['spiffe://anonymizer.test/', /must not end with "\/"/],
      ['spiffe://anonymizer.test/media/', /must not end with "\/"/],
      ['spiffe://anonymizer.test//blur', /empty path segment/],
      ['spiffe://anonymizer.test/media/./blur', /"\." path segment/],
      ['spiffe://anonymizer.test/media/../admin', /"\.\." path segment/],
      ['spiffe://anonymizer.test/..', /"\.\." path segment/],
      ['spiffe://anonymizer.test/bl ur', /has " " in its path/],
      ['spiffe://anonymizer.test/blür', /has "ü" in its path/],
      ['spiffe://anonymizer.test/a*b', /has "\*" in its path/],
      ['spiffe://anonymizer.test/a\nb', /has "\\x0a" in its path/],
      [`spiffe://td/${'a'.repeat(MAX_SPIFFE_ID_BYTES)}`, /longer than 2048 bytes/],
      [`spiffe://${'a'.repeat(256)}/x`, /longer than 255 bytes/],
    ];
    for (const [text, reason] of invalid) {
      it(`${JSON.stringify(text.slice(0, 60))}: ${reason.source}`, async () => {
        const error = await expectBrokerError(() => parseSpiffeId(text), 'invalid', 'pki.spiffe_id', reason);
        expect(error.publicMessage).to.match(/^SPIFFE ID "/);
      });
    }
  });

  describe('parseTrustDomain', () => {
    for (const valid of ['anonymizer.test', 'prod', 'a-b_c.9', 'x'.repeat(255)]) {
      it(`accepts ${valid.slice(0, 40)}`, () => {
        expect(parseTrustDomain(valid)).to.equal(valid);
      });
    }
    const invalid: [string, RegExp][] = [
      ['', /is missing/],
      ['spiffe://anonymizer.test', /without "spiffe:\/\/"/],
      ['Anonymizer.test', /uppercase letter "A"/],
      ['anonymizer.test/blur', /has "\/"/],
      ['anonymizer.test:443', /has ":"/],
      ['x'.repeat(256), /longer than 255 bytes/],
    ];
    for (const [text, reason] of invalid) {
      it(`refuses ${JSON.stringify(text.slice(0, 40))}: ${reason.source}`, async () => {
        await expectBrokerError(() => parseTrustDomain(text), 'invalid', 'pki.trust_domain', reason);
      });
    }
  });

  it('sameSpiffeId compares exactly (paths are case-sensitive)', () => {
    expect(sameSpiffeId(parseSpiffeId('spiffe://td/a'), parseSpiffeId('spiffe://td/a'))).to.equal(true);
    expect(sameSpiffeId(parseSpiffeId('spiffe://td/a'), parseSpiffeId('spiffe://td/A'))).to.equal(false);
    expect(sameSpiffeId(parseSpiffeId('spiffe://td/a'), parseSpiffeId('spiffe://other/a'))).to.equal(false);
  });
});
