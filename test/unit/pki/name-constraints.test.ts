import { expect } from 'chai';
import {
  DerError,
  checkNameAgainstConstraints,
  decodeNameConstraints,
  derContext,
  derInteger,
  derSequence,
  encodeGeneralName,
  encodeNameConstraints,
  uriHost,
  type GeneralName,
  type NameConstraints,
} from '../../../src/pki/index.js';

const uri = (text: string): GeneralName => ({ kind: 'uniformResourceIdentifier', text, content: Buffer.from(text) });
const dns = (text: string): GeneralName => ({ kind: 'dNSName', text, content: Buffer.from(text) });
const ip = (bytes: number[]): GeneralName => ({ kind: 'iPAddress', text: bytes.join('.'), content: Buffer.from(bytes) });

describe('pki/name-constraints', () => {
  const constraints: NameConstraints = decodeNameConstraints(
    encodeNameConstraints([
      { kind: 'uniformResourceIdentifier', text: 'anonymizer.test' },
      { kind: 'uniformResourceIdentifier', text: '.tenants.test' },
      { kind: 'dNSName', text: 'media.internal' },
      { kind: 'iPAddressRange', address: Buffer.from([10, 0, 0, 0]), mask: Buffer.from([255, 0, 0, 0]) },
    ]),
  );

  it('round-trips permitted subtrees, printing IP ranges as CIDR', () => {
    expect(constraints.permitted.map((n) => [n.kind, n.text])).to.deep.equal([
      ['uniformResourceIdentifier', 'anonymizer.test'],
      ['uniformResourceIdentifier', '.tenants.test'],
      ['dNSName', 'media.internal'],
      ['iPAddress', '10.0.0.0/8'],
    ]);
  });

  const table: [GeneralName, boolean][] = [
    [uri('spiffe://anonymizer.test/media/blur'), true],
    [uri('spiffe://ANONYMIZER.test/x'), true],
    [uri('spiffe://anonymizer.test'), true],
    [uri('spiffe://payments.test/db'), false],
    [uri('spiffe://evil-anonymizer.test/x'), false],
    [uri('spiffe://x.anonymizer.test/x'), false],
    [uri('spiffe://a.tenants.test/x'), true],
    [uri('spiffe://tenants.test/x'), false],
    [uri('urn:anonymizer.test'), false],
    [uri('spiffe://user@anonymizer.test:8443/x'), true],
    [dns('media.internal'), true],
    [dns('blur.media.internal'), true],
    [dns('evilmedia.internal'), false],
    [ip([10, 9, 8, 7]), true],
    [ip([11, 0, 0, 1]), false],
  ];
  for (const [name, allowed] of table) {
    it(`${allowed ? 'permits' : 'refuses'} ${name.kind} ${name.text}`, () => {
      const violation = checkNameAgainstConstraints(name, constraints);
      if (allowed) expect(violation).to.equal(null);
      else expect(violation).to.match(/is outside the permitted subtrees/);
    });
  }

  it('leaves kinds without a permitted subtree unconstrained, and honours excluded subtrees', () => {
    const uriOnly = decodeNameConstraints(encodeNameConstraints([{ kind: 'uniformResourceIdentifier', text: 'anonymizer.test' }]));
    expect(checkNameAgainstConstraints(dns('anything.example'), uriOnly)).to.equal(null);
    const excluded = decodeNameConstraints(derSequence(derContext(1, derSequence(encodeGeneralName({ kind: 'dNSName', text: 'admin.internal' })), true)));
    expect(excluded.permitted).to.deep.equal([]);
    expect(checkNameAgainstConstraints(dns('x.admin.internal'), excluded)).to.match(/is in the excluded subtree admin\.internal/);
    expect(checkNameAgainstConstraints(dns('x.media.internal'), excluded)).to.equal(null);
  });

  it('refuses subtrees with minimum or maximum and empty constraints', () => {
    const withMaximum = derSequence(derContext(0, derSequence(encodeGeneralName({ kind: 'dNSName', text: 'a' }), derContext(1, derInteger(1).subarray(2))), true));
    expect(() => decodeNameConstraints(withMaximum)).to.throw(DerError, /minimum or maximum/);
    expect(() => decodeNameConstraints(derSequence())).to.throw(DerError, /empty/);
    expect(() => encodeNameConstraints([])).to.throw(RangeError);
  });

  it('uriHost takes the host of scheme://host[:port]/…, or null without an authority', () => {
    expect(uriHost('spiffe://Anonymizer.test/x')).to.equal('anonymizer.test');
    expect(uriHost('https://u:p@host.test:443/path?q')).to.equal('host.test');
    expect(uriHost('http://[::1]:80/')).to.equal('[::1]');
    expect(uriHost('urn:x:y')).to.equal(null);
    expect(uriHost('spiffe:///x')).to.equal(null);
  });
});
