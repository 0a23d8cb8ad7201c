import { expect } from 'chai';
import { HOUR_MS, MINUTE_MS } from '../../../src/core/index.js';
import { clampTtl, type TtlLimits } from '../../../src/policy/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';

describe('policy/ttl-limits clampTtl', () => {
  const limits: TtlLimits = { defaultTtlMs: 5 * MINUTE_MS, maxTtlMs: 15 * MINUTE_MS };

  const allowed: [number | undefined, number][] = [
    [undefined, 5 * MINUTE_MS],
    [1, 1],
    [1_000, 1_000],
    [5 * MINUTE_MS, 5 * MINUTE_MS],
    [10 * MINUTE_MS, 10 * MINUTE_MS],
    [15 * MINUTE_MS, 15 * MINUTE_MS],
  ];
  for (const [requested, granted] of allowed) {
    it(`${String(requested)} ms → ${granted} ms`, () => {
      expect(clampTtl(requested, limits)).to.equal(granted);
    });
  }

  const refused: [number, RegExp][] = [
    [15 * MINUTE_MS + 1, /requested TTL 15m1ms is above the maximum of 15m that policy allows/],
    [HOUR_MS, /requested TTL 1h is above the maximum of 15m/],
    [Number.MAX_SAFE_INTEGER, /above the maximum of 15m/],
    [0, /must be a positive duration, got 0 ms/],
    [-1_000, /must be a positive duration, got -1000 ms/],
    [Number.NaN, /must be a positive duration, got NaN ms/],
    [Number.POSITIVE_INFINITY, /must be a positive duration/],
    [1.5, /must be a positive duration/],
  ];
  for (const [requested, message] of refused) {
    it(`${requested} ms is refused (invalid policy.ttl), never silently shortened`, async () => {
      const error = await catchBrokerError(() => clampTtl(requested, limits));
      expect(error.kind).to.equal('invalid');
      expect(error.code).to.equal('policy.ttl');
      expect(error.publicMessage).to.match(message);
    });
  }
});
