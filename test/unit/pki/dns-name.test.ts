import { expect } from 'chai';
import { dnsNameProblem, dnsNameWithinConstraint, dnsPatternAllows } from '../../../src/pki/index.js';

describe('pki/dns-name', () => {
  const problems: [string, RegExp | null][] = [
    ['blur.media.internal', null],
    ['Blur.Media.Internal', null],
    ['a', null],
    ['x1-2.y', null],
    [`${'a'.repeat(63)}.test`, null],
    ['', /is empty/],
    ['*.media.internal', /wildcard/],
    ['blur.media.internal.', /ends with "\."/],
    ['blur..internal', /empty label/],
    ['-blur.internal', /invalid label "-blur"/],
    ['blur-.internal', /invalid label "blur-"/],
    ['bl_ur.internal', /invalid label "bl_ur"/],
    ['blür.internal', /invalid label/],
    [`${'a'.repeat(64)}.test`, /invalid label/],
    [`${'a.'.repeat(127)}ab`, /longer than 253/],
  ];
  for (const [name, problem] of problems) {
    it(`${JSON.stringify(name.slice(0, 40))}: ${problem === null ? 'valid' : problem.source}`, () => {
      const found = dnsNameProblem(name);
      if (problem === null) expect(found).to.equal(null);
      else expect(found).to.match(problem);
    });
  }

  it('policy patterns: exact names, and *.suffix for exactly one label', () => {
    const table: [string, string, boolean][] = [
      ['blur.media.internal', 'blur.media.internal', true],
      ['Blur.Media.Internal', 'blur.media.internal', true],
      ['blur.media.internal', 'x.blur.media.internal', false],
      ['*.media.internal', 'blur.media.internal', true],
      ['*.media.internal', 'a.b.media.internal', false],
      ['*.media.internal', 'media.internal', false],
      ['*.media.internal', 'evilmedia.internal', false],
      ['*.', 'x', false],
      ['*', 'x', false],
      ['bad_pattern', 'bad_pattern', false],
    ];
    for (const [pattern, name, allowed] of table) expect(dnsPatternAllows(pattern, name), `${pattern} ${name}`).to.equal(allowed);
  });

  it('RFC 5280 dNSName constraints cover the domain and names below it on label boundaries', () => {
    const table: [string, string, boolean][] = [
      ['media.internal', 'media.internal', true],
      ['a.b.media.internal', 'media.internal', true],
      ['evilmedia.internal', 'media.internal', false],
      ['a.media.internal', '.media.internal', true],
      ['media.internal', '.media.internal', false],
      ['anything', '', true],
      ['A.Media.Internal', 'media.internal', true],
    ];
    for (const [name, constraint, within] of table) expect(dnsNameWithinConstraint(name, constraint), `${name} in ${constraint}`).to.equal(within);
  });
});
