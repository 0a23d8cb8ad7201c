/** How the reports print figures: units on every duration, counts behind every share, a dash for none. */
import { expect } from 'chai';
import { formatHours, formatMs, formatNumber, formatRatio, formatShare, plural } from '../../../src/cli/report/units.js';
import { textTable } from '../../../src/cli/report/text-table.js';
import { ratioOf } from '../../../src/cli/report/statistics.js';

describe('report/units', () => {
  for (const [ms, text] of [
    [0, '0 ms'],
    [12, '12 ms'],
    [12.34, '12.3 ms'],
    [1_234, '1.23 s'],
    [30_000, '30.0 s'],
    [60_000, '1m'],
    [125_400, '2m5s'],
    [5_400_000, '1h30m'],
    [86_400_000, '24h'],
    [null, '–'],
    [Number.NaN, '–'],
  ] as const) {
    it(`formatMs(${String(ms)}) is ${text}`, () => {
      expect(formatMs(ms)).to.equal(text);
    });
  }

  it('shares: a percentage with its counts, or a dash for nothing to divide by', () => {
    expect(formatShare(ratioOf(1, 3))).to.equal('33.3 %');
    expect(formatRatio(ratioOf(1, 3))).to.equal('33.3 % (1/3)');
    expect(formatRatio(ratioOf(0, 0))).to.equal('– (none)');
    expect(formatShare(ratioOf(0, 0))).to.equal('–');
  });

  it('numbers, hours, plurals', () => {
    expect(formatNumber(3)).to.equal('3');
    expect(formatNumber(1.3333)).to.equal('1.33');
    expect(formatNumber(null)).to.equal('–');
    expect(formatHours(1.1666)).to.equal('1.17 h');
    expect(formatHours(2)).to.equal('2 h');
    expect(plural(1, 'entry', 'entries')).to.equal('1 entry');
    expect(plural(2, 'rotation')).to.equal('2 rotations');
  });

  it('textTable: columns two spaces apart, right-aligned where asked, indented', () => {
    expect(textTable(['name', 'count'], [['a', '5'], ['longer', '12']], ['left', 'right'])).to.deep.equal([
      '  name    count',
      '  a           5',
      '  longer     12',
    ]);
  });
});
