import { expect } from 'chai';
import { DEFAULT_RENEWAL_TIMING, backoffDelayMs, renewAtMs, uniformFraction, warnAtMs } from '../../../src/agent/index.js';
import { fixedRandom } from './fake-transport.js';

describe('agent/renewal-plan', () => {
  const notBeforeMs = Date.UTC(2026, 0, 1, 12, 0, 0);
  const hour = { notBeforeMs, notAfterMs: notBeforeMs + 3_600_000 };

  describe('renewAtMs: 2/3 of the lifetime minus up to 10 % jitter', () => {
    const cases: [string, number, number][] = [
      ['no jitter drawn (u = 0): exactly 2/3', 0, notBeforeMs + 2_400_000],
      ['half the jitter (u = 0.5): 2/3 − 5 %', 0.5, notBeforeMs + Math.floor(3_600_000 * (2 / 3 - 0.05))],
      ['all the jitter (u → 1): 2/3 − 10 %', 0.999_999, notBeforeMs + Math.floor(3_600_000 * (2 / 3 - 0.1 * 0.999_999))],
    ];
    for (const [name, u, expected] of cases) {
      it(name, () => {
        expect(renewAtMs(hour, DEFAULT_RENEWAL_TIMING, u)).to.equal(expected);
      });
    }

    it('stays within [2/3 − 0.1, 2/3] of the lifetime for every draw', () => {
      for (let i = 0; i <= 256; i++) {
        const at = renewAtMs(hour, DEFAULT_RENEWAL_TIMING, i / 257);
        expect(at).to.be.within(notBeforeMs + Math.floor(3_600_000 * (2 / 3 - 0.1)), notBeforeMs + 2_400_000);
      }
    });

    it('clamps a draw outside [0, 1) and a fraction below 0', () => {
      expect(renewAtMs(hour, DEFAULT_RENEWAL_TIMING, -3)).to.equal(notBeforeMs + 2_400_000);
      expect(renewAtMs(hour, DEFAULT_RENEWAL_TIMING, 7)).to.equal(notBeforeMs + Math.floor(3_600_000 * (2 / 3 - 0.1)));
      expect(renewAtMs(hour, { renewAtFraction: 0.1, jitterFraction: 0.5 }, 1)).to.equal(notBeforeMs);
    });

    it('uses the configured fraction (0.5, no jitter)', () => {
      expect(renewAtMs(hour, { renewAtFraction: 0.5, jitterFraction: 0 }, 0.7)).to.equal(notBeforeMs + 1_800_000);
    });
  });

  describe('backoffDelayMs: doubles from the initial delay up to the cap', () => {
    it('1 s, 2 s, 4 s … then 60 s for ever', () => {
      const delays = Array.from({ length: 10 }, (_, i) => backoffDelayMs(i + 1, DEFAULT_RENEWAL_TIMING));
      expect(delays).to.deep.equal([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
    });

    it('0 for no failure; never overflows for huge counts', () => {
      expect(backoffDelayMs(0, DEFAULT_RENEWAL_TIMING)).to.equal(0);
      expect(backoffDelayMs(10_000, DEFAULT_RENEWAL_TIMING)).to.equal(60_000);
      expect(backoffDelayMs(Number.MAX_SAFE_INTEGER, { backoffInitialMs: 50, backoffMaxMs: 1e15 })).to.equal(50 * 2 ** 30);
    });

    it('a cap below the initial delay wins', () => {
      expect(backoffDelayMs(1, { backoffInitialMs: 5_000, backoffMaxMs: 2_000 })).to.equal(2_000);
    });
  });

  describe('warnAtMs', () => {
    it('warnBefore the end when that is after the renewal time', () => {
      expect(warnAtMs(hour, notBeforeMs + 2_400_000, DEFAULT_RENEWAL_TIMING)).to.equal(hour.notAfterMs - 600_000);
    });
    it('never before the renewal time (a 2-minute certificate is no alarm until renewal failed)', () => {
      const short = { notBeforeMs, notAfterMs: notBeforeMs + 120_000 };
      expect(warnAtMs(short, notBeforeMs + 80_000, DEFAULT_RENEWAL_TIMING)).to.equal(notBeforeMs + 80_000);
    });
  });

  it('uniformFraction maps 32 random bits to [0, 1)', () => {
    expect(uniformFraction(fixedRandom(0))).to.equal(0);
    expect(uniformFraction(fixedRandom(0xff))).to.be.below(1).and.above(0.9999);
    expect(uniformFraction(fixedRandom(0x80))).to.be.closeTo(0.502, 0.001);
  });
});
