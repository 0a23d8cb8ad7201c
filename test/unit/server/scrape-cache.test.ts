import { expect } from 'chai';
import { ManualClock } from '../../../src/core/index.js';
import { ScrapeCache } from '../../../src/server/scrape-cache.js';

describe('server/scrape-cache', () => {
  const start = Date.parse('2026-12-04T00:00:00Z');

  /** A cache over a loader that counts its reads and can be told to fail or to hold. */
  function setup(maxAgeMs = 5_000): { clock: ManualClock; cache: ScrapeCache<number>; reads: () => number; fail: (yes: boolean) => void; hold: () => () => void } {
    const clock = new ManualClock(start);
    let reads = 0;
    let failing = false;
    let gate: Promise<void> | null = null;
    const cache = new ScrapeCache(
      async () => {
        reads++;
        const read = reads;
        if (gate !== null) await gate;
        if (failing) throw new Error('store closed');
        return read;
      },
      clock,
      maxAgeMs,
    );
    return {
      clock,
      cache,
      reads: () => reads,
      fail: (yes) => {
        failing = yes;
      },
      hold: () => {
        let open: () => void = () => undefined;
        gate = new Promise((resolve) => {
          open = resolve;
        });
        return () => {
          gate = null;
          open();
        };
      },
    };
  }

  it('a storm of concurrent scrapes costs one read', async () => {
    const { cache, reads, hold } = setup();
    const release = hold();
    const all = Promise.all(Array.from({ length: 100 }, () => cache.get()));
    release();
    expect(new Set(await all)).to.deep.equal(new Set([1]));
    expect(reads()).to.equal(1);
  });

  it('reuses the value for maxAgeMs of the clock, then reads again', async () => {
    const { clock, cache, reads } = setup(5_000);
    expect(await cache.get()).to.equal(1);
    clock.advance(4_999);
    expect(await cache.get()).to.equal(1);
    clock.advance(1);
    expect(await cache.get()).to.equal(2);
    expect(reads()).to.equal(2);
  });

  it('a clock that went backwards makes the value stale', async () => {
    const { clock, cache } = setup();
    expect(await cache.get()).to.equal(1);
    clock.set(start - 1_000);
    expect(await cache.get()).to.equal(2);
  });

  it('a failed read reaches every waiting caller and is not kept: the next call reads again', async () => {
    const { cache, reads, fail, hold } = setup();
    fail(true);
    const release = hold();
    const first = cache.get();
    const second = cache.get();
    release();
    for (const call of [first, second]) {
      let caught: unknown = null;
      await call.catch((error: unknown) => {
        caught = error;
      });
      expect(String(caught)).to.contain('store closed');
    }
    expect(reads()).to.equal(1);
    fail(false);
    expect(await cache.get()).to.equal(2);
  });

  it('maxAgeMs 0 reads on every call; a negative one is refused', async () => {
    const { cache } = setup(0);
    expect(await cache.get()).to.equal(1);
    expect(await cache.get()).to.equal(2);
    expect(() => new ScrapeCache(() => Promise.resolve(0), new ManualClock(start), -1)).to.throw(RangeError);
  });
});
