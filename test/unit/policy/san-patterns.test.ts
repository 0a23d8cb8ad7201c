import { expect } from 'chai';
import { isIP } from 'node:net';
import { dnsPatternProblem, ipBlockProblem, parseIpBlock } from '../../../src/policy/index.js';
import { dnsNameProblem, dnsPatternAllows, parseIpRange } from '../../../src/pki/index.js';

describe('policy/dns-pattern', () => {
  const table: [string, RegExp | null][] = [
    ['import.pipeline.internal', null],
    ['localhost', null],
    ['x1-2.y', null],
    [`${'a'.repeat(63)}.test`, null],
    ['*.pipeline.internal', null],
    ['*.a.b', null],
    ['', /is empty/],
    ['Import.pipeline.internal', /uppercase/],
    ['import.pipeline.internal.', /ends with "\."/],
    ['import..internal', /empty label/],
    ['-import.internal', /invalid label "-import"/],
    ['import-.internal', /invalid label "import-"/],
    ['im_port.internal', /invalid label "im_port"/],
    ['blür.internal', /invalid label/],
    [`${'a'.repeat(64)}.test`, /invalid label/],
    [`${'a.'.repeat(127)}ab`, /longer than 253/],
    ['*', /"\*" may only be the whole first label/],
    ['*.internal', /suffix of at least two labels/],
    ['a.*.internal', /outside the first label/],
    ['*x.pipeline.internal', /outside the first label/],
    ['*.*.pipeline.internal', /outside the first label/],
    ['import pipeline', /invalid label/],
  ];
  for (const [text, problem] of table) {
    it(`${JSON.stringify(text.slice(0, 40))}: ${problem === null ? 'valid' : problem.source}`, () => {
      const found = dnsPatternProblem(text);
      if (problem === null) expect(found).to.equal(null);
      else expect(found).to.match(problem);
    });
  }

  it('src/pki accepts every name it accepts, and grants the names a pattern stands for', () => {
    for (const [text, problem] of table) {
      if (problem !== null) continue;
      if (text.startsWith('*.')) {
        expect(dnsNameProblem(text.slice(2)), text).to.equal(null);
        expect(dnsPatternAllows(text, `x.${text.slice(2)}`), text).to.equal(true);
      } else {
        expect(dnsNameProblem(text), text).to.equal(null);
        expect(dnsPatternAllows(text, text), text).to.equal(true);
      }
    }
  });
});

describe('policy/ip-block', () => {
  const table: [string, RegExp | null, number?][] = [
    ['10.1.2.3', null, 32],
    ['0.0.0.0', null, 32],
    ['10.0.0.0/8', null, 8],
    ['10.20.0.0/24', null, 24],
    ['0.0.0.0/0', null, 0],
    ['192.168.1.1/32', null, 32],
    ['::1', null, 128],
    ['fd00::7', null, 128],
    ['fd00::/8', null, 8],
    ['fd00:1::/64', null, 64],
    ['2001:db8:0:0:0:0:0:1', null, 128],
    ['::ffff:10.0.0.1', null, 128],
    ['::', null, 128],
    ['FD00::', null, 128],
    ['', /not an IPv4 or IPv6 address/],
    ['10.0.0', /not an IPv4 or IPv6 address/],
    ['10.0.0.256', /not an IPv4 or IPv6 address/],
    ['010.0.0.1', /not an IPv4 or IPv6 address/],
    ['10.0.0.1 ', /not an IPv4 or IPv6 address/],
    ['fe80::1%eth0', /not an IPv4 or IPv6 address/],
    ['1::2::3', /not an IPv4 or IPv6 address/],
    ['1:2:3:4:5:6:7:8:9', /not an IPv4 or IPv6 address/],
    ['1:2:3:4:5:6:7', /not an IPv4 or IPv6 address/],
    ['12345::', /not an IPv4 or IPv6 address/],
    ['import.internal', /not an IPv4 or IPv6 address/],
    ['10.0.0.0/33', /prefix length "33": expected 0 to 32/],
    ['10.0.0.0/08', /prefix length "08"/],
    ['10.0.0.0/', /prefix length ""/],
    ['fd00::/129', /expected 0 to 128/],
    ['10.0.0.1/8', /address bits set after the \/8 prefix/],
    ['fd00::1/64', /address bits set after the \/64 prefix/],
  ];
  for (const [text, problem, prefixLength] of table) {
    it(`${JSON.stringify(text)}: ${problem === null ? `valid /${String(prefixLength)}` : problem.source}`, () => {
      const found = ipBlockProblem(text);
      if (problem === null) {
        expect(found).to.equal(null);
        expect(parseIpBlock(text)?.prefixLength).to.equal(prefixLength);
      } else {
        expect(found).to.match(problem);
        expect(parseIpBlock(text)).to.equal(null);
      }
    });
  }

  it('agrees with src/pki parseIpRange on every case, and with node:net on plain addresses', () => {
    for (const [text, problem] of table) {
      const ours = parseIpBlock(text);
      const theirs = parseIpRange(text);
      expect(theirs === null, text).to.equal(problem !== null);
      if (ours !== null && theirs !== null) {
        expect(Array.from(ours.address), text).to.deep.equal(Array.from(theirs.address));
        expect(ours.prefixLength, text).to.equal(theirs.prefixLength);
      }
      if (!text.includes('/') && !text.includes('%')) expect(isIP(text) !== 0, text).to.equal(problem === null);
    }
  });
});
