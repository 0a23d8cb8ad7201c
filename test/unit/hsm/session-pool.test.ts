import { expect } from 'chai';
import { BrokerError } from '../../../src/core/index.js';
import { SessionPool } from '../../../src/hsm/session-pool.js';

const session = (n: number): Buffer => Buffer.from([n]);

describe('hsm/session-pool', () => {
  it('lends each session to one operation at a time and serves waiters in FIFO order', async () => {
    const pool = new SessionPool([session(1), session(2)]);
    const order: string[] = [];
    const releases: (() => void)[] = [];
    const hold = (name: string): Promise<void> =>
      pool.use(
        (s) =>
          new Promise<void>((resolve) => {
            order.push(`${name}:${s[0]}`);
            releases.push(resolve);
          }),
      );
    const running = [hold('a'), hold('b'), hold('c'), hold('d')];
    await Promise.resolve();
    expect(pool.inUse).to.equal(2);
    expect(pool.waiting).to.equal(2);
    expect(order).to.deep.equal(['a:2', 'b:1']);
    releases.shift()!();
    await running[0];
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(order).to.deep.equal(['a:2', 'b:1', 'c:2']);
    while (releases.length > 0 || pool.waiting > 0 || order.length < 4) {
      releases.shift()?.();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    releases.forEach((release) => {
      release();
    });
    await Promise.all(running);
    expect(order.map((entry) => entry.split(':')[0])).to.deep.equal(['a', 'b', 'c', 'd']);
    expect(pool.inUse).to.equal(0);
  });

  it('gives the session back when the operation throws', async () => {
    const pool = new SessionPool([session(1)]);
    let caught: unknown;
    try {
      await pool.use(() => {
        throw new Error('boom');
      });
    } catch (error) {
      caught = error;
    }
    expect((caught as Error).message).to.equal('boom');
    expect(pool.inUse).to.equal(0);
    expect(await pool.use((s) => s[0])).to.equal(1);
  });

  it('turns a full wait queue into exhausted instead of unbounded memory', async () => {
    const pool = new SessionPool([session(1)], 1);
    let release: () => void = () => undefined;
    const first = pool.use(() => new Promise<void>((resolve) => (release = resolve)));
    const second = pool.use(() => 'second');
    let error: unknown;
    try {
      await pool.use(() => 'third');
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(BrokerError);
    expect((error as BrokerError).kind).to.equal('exhausted');
    expect((error as BrokerError).code).to.equal('hsm.pool_exhausted');
    release();
    await first;
    expect(await second).to.equal('second');
  });

  it('close fails the waiters and every later call with the closing error', async () => {
    const pool = new SessionPool([session(1)]);
    let release: () => void = () => undefined;
    const holder = pool.use(() => new Promise<void>((resolve) => (release = resolve)));
    const waiter = pool.use(() => 'never');
    const closing = new BrokerError('unavailable', { code: 'hsm.session_lost', publicMessage: 'lost' });
    pool.close(closing);
    let waiterError: unknown;
    try {
      await waiter;
    } catch (caught) {
      waiterError = caught;
    }
    expect(waiterError).to.equal(closing);
    let laterError: unknown;
    try {
      await pool.use(() => 'later');
    } catch (caught) {
      laterError = caught;
    }
    expect(laterError).to.equal(closing);
    release();
    await holder;
  });
});
