import { expect } from 'chai';
import {
  DAY_MS,
  formatDurationMs,
  HOUR_MS,
  MINUTE_MS,
  parseDurationMs,
  SECOND_MS,
} from '../../../src/core/index.js';

describe('core/duration', () => {
  it('has consistent unit constants', () => {
    expect([SECOND_MS, MINUTE_MS, HOUR_MS, DAY_MS]).to.deep.equal([1_000, 60_000, 3_600_000, 86_400_000]);
  });

  describe('parseDurationMs', () => {
    const valid: [string, number][] = [
      ['250ms', 250],
      ['0s', 0],
      ['30s', 30 * SECOND_MS],
      ['15m', 15 * MINUTE_MS],
      ['1h', HOUR_MS],
      ['24h', 24 * HOUR_MS],
      ['1h30m', HOUR_MS + 30 * MINUTE_MS],
      ['1d2h3m4s5ms', DAY_MS + 2 * HOUR_MS + 3 * MINUTE_MS + 4 * SECOND_MS + 5],
      ['365d', 365 * DAY_MS],
      [' 5m ', 5 * MINUTE_MS],
    ];
    for (const [text, ms] of valid) {
      it(`${JSON.stringify(text)} -> ${ms} ms`, () => {
        expect(parseDurationMs(text)).to.equal(ms);
      });
    }

    const invalid = ['15', '1x', '-5m', '', ' ', 'm', '1.5h', '1 h', '5M', 'h1', '1h-30m', '+5m', '1e3s', 'ms'];
    for (const text of invalid) {
      it(`refuses ${JSON.stringify(text)} and says what a duration looks like`, () => {
        expect(() => parseDurationMs(text))
          .to.throw(RangeError)
          .with.property('message')
          .that.includes(`"${text}" is not a duration`)
          .and.includes('15m');
      });
    }

    it('refuses totals beyond a safe integer', () => {
      expect(() => parseDurationMs('999999999999999999d')).to.throw(RangeError, /too large/);
    });
  });

  describe('formatDurationMs', () => {
    const cases: [number, string][] = [
      [0, '0s'],
      [5, '5ms'],
      [1_000, '1s'],
      [90_000, '1m30s'],
      [HOUR_MS, '1h'],
      [DAY_MS + HOUR_MS + 1, '1d1h1ms'],
      [7 * DAY_MS, '7d'],
    ];
    for (const [ms, text] of cases) {
      it(`${ms} ms -> ${text}`, () => {
        expect(formatDurationMs(ms)).to.equal(text);
      });
    }

    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 2]) {
      it(`refuses ${String(bad)}`, () => {
        expect(() => formatDurationMs(bad)).to.throw(RangeError);
      });
    }
  });

  describe('round trip', () => {
    const values = [0, 1, 999, 1_000, 59_999, 90_000, HOUR_MS, 36 * HOUR_MS + 1, 400 * DAY_MS + 7, 2 ** 40];
    for (const ms of values) {
      it(`parse(format(${ms})) === ${ms}`, () => {
        expect(parseDurationMs(formatDurationMs(ms))).to.equal(ms);
      });
    }
    for (const text of ['1h30m', '15m', '1d1h1ms', '250ms']) {
      it(`format(parse(${text})) === ${text} for canonical text`, () => {
        expect(formatDurationMs(parseDurationMs(text))).to.equal(text);
      });
    }
  });
});
