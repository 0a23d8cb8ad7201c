import { expect } from 'chai';
import { formatIpAddress, ipInRange, maskPrefixLength, parseIpAddress, parseIpRange, prefixMask } from '../../../src/pki/index.js';

describe('pki/ip-address', () => {
  const valid: [string, string, string][] = [
    ['10.1.2.3', '0a010203', '10.1.2.3'],
    ['0.0.0.0', '00000000', '0.0.0.0'],
    ['255.255.255.255', 'ffffffff', '255.255.255.255'],
    ['::1', '00000000000000000000000000000001', '::1'],
    ['::', '00000000000000000000000000000000', '::'],
    ['FD00:0:0:0::7', 'fd000000000000000000000000000007', 'fd00::7'],
    ['2001:db8:0:0:1:0:0:1', '20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['2001:db8::1:0:0:1', '20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
    ['::ffff:10.1.2.3', '00000000000000000000ffff0a010203', '::ffff:a01:203'],
  ];
  for (const [text, hex, canonical] of valid) {
    it(`parses ${text} and prints it as ${canonical}`, () => {
      const bytes = parseIpAddress(text);
      expect(Buffer.from(bytes ?? []).toString('hex')).to.equal(hex);
      expect(formatIpAddress(bytes ?? new Uint8Array())).to.equal(canonical);
    });
  }

  for (const text of ['', '10.1.2', '10.1.2.3.4', '256.1.1.1', '010.1.1.1', '1.2.3.-4', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '::1%eth0', '1:2:3:4:5:6:7::8:9', ' 10.1.2.3']) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      expect(parseIpAddress(text)).to.equal(null);
    });
  }

  it('parses ranges with zero host bits and matches addresses of the same family only', () => {
    const range = parseIpRange('10.0.0.0/8');
    expect(range?.prefixLength).to.equal(8);
    expect(ipInRange(parseIpAddress('10.255.0.1') ?? new Uint8Array(), range ?? { address: new Uint8Array(), prefixLength: 0 })).to.equal(true);
    expect(ipInRange(parseIpAddress('11.0.0.1') ?? new Uint8Array(), range ?? { address: new Uint8Array(), prefixLength: 0 })).to.equal(false);
    expect(ipInRange(parseIpAddress('::ffff:10.0.0.1') ?? new Uint8Array(), range ?? { address: new Uint8Array(), prefixLength: 0 })).to.equal(false);
    expect(parseIpRange('10.0.0.1')?.prefixLength).to.equal(32);
    expect(parseIpRange('fd00::/8')?.prefixLength).to.equal(8);
    for (const bad of ['10.0.0.1/8', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/08', 'x/8', '::1/129']) expect(parseIpRange(bad), bad).to.equal(null);
  });

  it('converts between prefix lengths and masks; holes are not prefixes', () => {
    expect(Buffer.from(prefixMask(4, 20)).toString('hex')).to.equal('fffff000');
    expect(maskPrefixLength(Buffer.from('fffff000', 'hex'))).to.equal(20);
    expect(maskPrefixLength(Buffer.from('ff00ff00', 'hex'))).to.equal(null);
  });
});
