/** Percentiles, shares and histograms of the reports: known answers, and empty samples give null, never NaN. */
import { expect } from 'chai';
import { distributionOf, histogramOf, percentile, ratioOf } from '../../../src/cli/report/statistics.js';

describe('report/statistics', () => {
  describe('percentile (nearest rank)', () => {
    const oneToTen = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    for (const [q, expected] of [
      [0.5, 5],
      [0.9, 9],
      [0.95, 10],
      [0.99, 10],
      [1, 10],
      [0.01, 1],
      [0.11, 2],
    ] as const) {
      it(`p${q * 100} of 1..10 is ${expected}`, () => {
        expect(percentile(oneToTen, q)).to.equal(expected);
      });
    }

    it('is always a value of the sample (no interpolation)', () => {
      expect(percentile([10, 1000], 0.5)).to.equal(10);
      expect(percentile([10, 1000], 0.51)).to.equal(1000);
    });

    it('of one value is that value; of none is null', () => {
      expect(percentile([42], 0.99)).to.equal(42);
      expect(percentile([], 0.5)).to.equal(null);
    });
  });

  it('distributionOf sorts a copy and summarises it', () => {
    const values = [40, 10, 30, 20];
    expect(distributionOf(values)).to.deep.equal({ count: 4, min: 10, p50: 20, p90: 40, p95: 40, p99: 40, max: 40, mean: 25 });
    expect(values, 'the input is not reordered').to.deep.equal([40, 10, 30, 20]);
    expect(distributionOf([1, 2]).mean).to.equal(1.5);
    expect(distributionOf([1, 1, 2]).mean).to.equal(1.333);
  });

  it('distributionOf an empty sample: count 0 and null figures', () => {
    expect(distributionOf([])).to.deep.equal({ count: 0, min: null, p50: null, p90: null, p95: null, p99: null, max: null, mean: null });
  });

  it('ratioOf: a share in [0, 1], null for nothing to divide by', () => {
    expect(ratioOf(3, 4)).to.deep.equal({ count: 3, of: 4, share: 0.75 });
    expect(ratioOf(0, 0)).to.deep.equal({ count: 0, of: 0, share: null });
    expect(ratioOf(0, 5).share).to.equal(0);
  });

  it('histogramOf: inclusive upper edges, and a last bucket for everything above', () => {
    expect(histogramOf([1, 5, 6, 10, 11, 500], [5, 10])).to.deep.equal([
      { upTo: 5, count: 2 },
      { upTo: 10, count: 2 },
      { upTo: null, count: 2 },
    ]);
    expect(histogramOf([], [5]).map((b) => b.count)).to.deep.equal([0, 0]);
  });
});
