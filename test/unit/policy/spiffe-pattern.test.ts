import { expect } from 'chai';
import { parseSpiffePattern, spiffePatternMatches, trustDomainProblem, type SpiffePattern } from '../../../src/policy/index.js';
import { parseSpiffeId } from '../../../src/pki/index.js';

function pattern(text: string, allowWildcards = true): SpiffePattern {
  const parsed = parseSpiffePattern(text, allowWildcards);
  if (!parsed.ok) expect.fail(`${text}: ${parsed.problem}`);
  return parsed.pattern;
}

describe('policy/spiffe-pattern', () => {
  describe('parses IDs and patterns', () => {
    const valid: [string, { segments: string[]; isPattern: boolean; literalSegments: number }][] = [
      ['spiffe://anonymizer.local/pipeline/import', { segments: ['pipeline', 'import'], isPattern: false, literalSegments: 2 }],
      ['spiffe://a-b_c.0/Upper.Case-and_under/9', { segments: ['Upper.Case-and_under', '9'], isPattern: false, literalSegments: 2 }],
      ['spiffe://td/...', { segments: ['...'], isPattern: false, literalSegments: 1 }],
      ['spiffe://td/pipeline/*', { segments: ['pipeline', '*'], isPattern: true, literalSegments: 1 }],
      ['spiffe://td/*/import', { segments: ['*', 'import'], isPattern: true, literalSegments: 1 }],
      ['spiffe://td/pipeline/**', { segments: ['pipeline', '**'], isPattern: true, literalSegments: 1 }],
      ['spiffe://td/a/*/**', { segments: ['a', '*', '**'], isPattern: true, literalSegments: 1 }],
      ['spiffe://td/a/*/c/**', { segments: ['a', '*', 'c', '**'], isPattern: true, literalSegments: 2 }],
    ];
    for (const [text, expected] of valid) {
      it(text, () => {
        const parsed = pattern(text);
        expect({ segments: parsed.segments, isPattern: parsed.isPattern, literalSegments: parsed.literalSegments }).to.deep.equal(expected);
        expect(parsed.text).to.equal(text);
        expect(Object.isFrozen(parsed)).to.equal(true);
      });
    }
  });

  describe('refuses, saying why', () => {
    const invalid: [string, RegExp][] = [
      ['', /is empty/],
      ['https://td/a', /must start with "spiffe:\/\/"/],
      ['SPIFFE://td/a', /lowercase scheme/],
      ['spiffe://Td/a', /uppercase letter "T"/],
      ['spiffe:///a', /trust domain that is empty/],
      ['spiffe://td:443/a', /has ":"/],
      ['spiffe://user@td/a', /has "@"/],
      ['spiffe://td', /names the trust domain itself/],
      ['spiffe://td/', /names the trust domain itself/],
      ['spiffe://td/a/', /must not end with "\/"/],
      ['spiffe://td/a//b', /empty path segment/],
      ['spiffe://td/a/./b', /"\." path segment/],
      ['spiffe://td/a/..', /"\.\." path segment/],
      ['spiffe://td/a?x=1', /has "\?" in its path/],
      ['spiffe://td/a#frag', /has "#" in its path/],
      ['spiffe://td/a%41', /has "%" in its path/],
      ['spiffe://td/a b', /has " " in its path/],
      ['spiffe://td/blür', /has "ü" in its path/],
      ['spiffe://td/imp*', /"\*" and "\*\*" must be whole path segments/],
      ['spiffe://td/***', /must be whole path segments/],
      ['spiffe://td/a/**/b', /"\*\*" may only end a pattern/],
      ['spiffe://td/*', /at least one literal path segment/],
      ['spiffe://td/**', /at least one literal path segment/],
      ['spiffe://td/*/**', /at least one literal path segment/],
      [`spiffe://td/${'a'.repeat(2048)}`, /longer than 2048 bytes/],
      [`spiffe://${'a'.repeat(256)}/x`, /longer than 255 bytes/],
    ];
    for (const [text, problem] of invalid) {
      it(`${JSON.stringify(text.slice(0, 40))}: ${problem.source}`, () => {
        const parsed = parseSpiffePattern(text);
        expect(parsed.ok).to.equal(false);
        if (!parsed.ok) expect(parsed.problem).to.match(problem);
      });
    }

    it('wildcards in an exact ID', () => {
      for (const text of ['spiffe://td/a/*', 'spiffe://td/a/**', 'spiffe://td/a*']) {
        const parsed = parseSpiffePattern(text, false);
        expect(parsed.ok, text).to.equal(false);
        if (!parsed.ok) expect(parsed.problem).to.match(/expected an exact SPIFFE ID/);
      }
    });
  });

  it('trust domains: lowercase [a-z0-9._-], no scheme', () => {
    const table: [string, RegExp | null][] = [
      ['anonymizer.local', null],
      ['a-b_c.0', null],
      ['', /is empty/],
      ['Anonymizer.local', /uppercase letter "A"/],
      ['spiffe://td', /without "spiffe:\/\/"/],
      ['td/x', /has "\/"/],
      ['t d', /has " "/],
    ];
    for (const [text, problem] of table) {
      const found = trustDomainProblem(text);
      if (problem === null) expect(found, text).to.equal(null);
      else expect(found, text).to.match(problem);
    }
  });

  it('matches: * is exactly one segment, a trailing ** one or more, literals case-sensitively', () => {
    const table: [string, string, boolean][] = [
      ['spiffe://td/pipeline/import', 'spiffe://td/pipeline/import', true],
      ['spiffe://td/pipeline/import', 'spiffe://td/pipeline/Import', false],
      ['spiffe://td/pipeline/import', 'spiffe://other/pipeline/import', false],
      ['spiffe://td/pipeline/*', 'spiffe://td/pipeline/detect', true],
      ['spiffe://td/pipeline/*', 'spiffe://td/pipeline', false],
      ['spiffe://td/pipeline/*', 'spiffe://td/pipeline/detect/gpu-1', false],
      ['spiffe://td/*/detect', 'spiffe://td/pipeline/detect', true],
      ['spiffe://td/*/detect', 'spiffe://td/pipeline/blur', false],
      ['spiffe://td/pipeline/**', 'spiffe://td/pipeline/detect', true],
      ['spiffe://td/pipeline/**', 'spiffe://td/pipeline/detect/gpu-1/x', true],
      ['spiffe://td/pipeline/**', 'spiffe://td/pipeline', false],
      ['spiffe://td/pipeline/**', 'spiffe://td/pipelines/detect', false],
      ['spiffe://td/pipeline/**', 'spiffe://other/pipeline/detect', false],
      ['spiffe://td/a/*/**', 'spiffe://td/a/b', false],
      ['spiffe://td/a/*/**', 'spiffe://td/a/b/c', true],
      ['spiffe://td/a/*/**', 'spiffe://td/a/b/c/d', true],
    ];
    for (const [patternText, idText, matches] of table) {
      expect(spiffePatternMatches(pattern(patternText), pattern(idText, false)), `${patternText} ~ ${idText}`).to.equal(matches);
    }
  });

  it('every exact ID it accepts, src/pki parseSpiffeId accepts as the same ID', () => {
    const ids = [
      'spiffe://anonymizer.local/pipeline/import',
      'spiffe://a-b_c.0/Upper.Case-and_under/9',
      'spiffe://td/...',
      'spiffe://td/.hidden/-/_',
      `spiffe://td/${'a'.repeat(2048 - 'spiffe://td/'.length)}`,
      `spiffe://${'a'.repeat(255)}/x`,
    ];
    for (const text of ids) {
      const ours = pattern(text, false);
      const theirs = parseSpiffeId(text);
      expect(theirs.trustDomain).to.equal(ours.trustDomain);
      expect(theirs.path).to.equal(`/${ours.segments.join('/')}`);
    }
  });
});
