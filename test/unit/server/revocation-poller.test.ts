import { expect } from 'chai';
import { ManualClock } from '../../../src/core/index.js';
import { RevocationPoller } from '../../../src/server/index.js';
import { SqliteStore } from '../../../src/store/index.js';
import { HOUR_MS, MINUTE_MS, T0, at, certificate, serialOf } from '../store/store-fixtures.js';

describe('server/revocation-poller', () => {
  it('reports each revocation it did not know, once; expired ones are not reported', async () => {
    const store = await SqliteStore.open(':memory:');
    const known = new Set<string>([serialOf(1)]);
    const reported: string[] = [];
    const poller = new RevocationPoller({
      store,
      clock: new ManualClock(T0),
      isKnown: (serial) => known.has(serial),
      onRevoked: (serial) => {
        reported.push(serial);
        known.add(serial);
      },
      intervalMs: 2_000,
    });
    try {
      await store.transaction(async (tx) => {
        for (const n of [1, 2, 3, 4]) await tx.insertCertificate(certificate(n));
        // Another broker's revocations: 1 (known already), 2 and 3; 4 stays valid.
        for (const n of [1, 2, 3]) await tx.revokeCertificate(serialOf(n), at(MINUTE_MS), 'keyCompromise');
      });
      expect(await poller.tick(at(5 * MINUTE_MS))).to.deep.equal([serialOf(2), serialOf(3)]);
      expect(await poller.tick(at(6 * MINUTE_MS)), 'nothing new').to.deep.equal([]);
      await store.transaction((tx) => tx.revokeCertificate(serialOf(4), at(7 * MINUTE_MS), 'superseded'));
      // Certificate 4 (issued at T0+4m, valid 1 h) has expired by T0+2h: nothing to refuse.
      expect(await poller.tick(at(2 * HOUR_MS))).to.deep.equal([]);
      expect(await poller.tick(at(8 * MINUTE_MS))).to.deep.equal([serialOf(4)]);
      expect(reported).to.deep.equal([serialOf(2), serialOf(3), serialOf(4)]);
    } finally {
      await store.close();
    }
  });

  it('joins a tick already running instead of reading twice', async () => {
    const store = await SqliteStore.open(':memory:');
    let reads = 0;
    const counting = {
      transaction: <T>(work: Parameters<typeof store.transaction<T>>[0]): Promise<T> => {
        reads++;
        return store.transaction(work);
      },
      close: () => store.close(),
    };
    const poller = new RevocationPoller({ store: counting, clock: new ManualClock(T0), isKnown: () => false, onRevoked: () => undefined, intervalMs: 1_000 });
    await Promise.all([poller.tick(), poller.tick(), poller.tick()]);
    expect(reads).to.equal(1);
    expect(() => new RevocationPoller({ store, clock: new ManualClock(T0), isKnown: () => false, onRevoked: () => undefined, intervalMs: 0 })).to.throw(RangeError);
    await store.close();
  });
});
