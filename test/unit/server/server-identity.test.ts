import { expect } from 'chai';
import { ManualClock } from '../../../src/core/index.js';
import { ServerIdentityRenewer, type IssuedServerIdentity } from '../../../src/server/server-identity.js';

const HOUR_MS = 3_600_000;

function identity(serial: string, notBeforeMs: number, ttlMs: number): IssuedServerIdentity {
  return { identity: { privateKeyPem: 'k', certificateChainPem: serial, clientCaPem: 'ca' }, serial, notBefore: new Date(notBeforeMs), notAfter: new Date(notBeforeMs + ttlMs) };
}

describe('server/server-identity: renewal at two thirds of the life', () => {
  const start = Date.parse('2026-12-04T00:00:00Z');

  it('renews only when due, applies the new identity, and retries after a failure', async () => {
    const clock = new ManualClock(start);
    const applied: string[] = [];
    let fail = false;
    let issued = 0;
    const renewer = new ServerIdentityRenewer(
      identity('a', start, 12 * HOUR_MS),
      (now) => {
        if (fail) return Promise.reject(new Error('HSM unavailable'));
        issued++;
        return Promise.resolve(identity(`renewed-${issued}`, now.getTime(), 12 * HOUR_MS));
      },
      (next) => applied.push(next.serial),
      clock,
    );
    expect(renewer.renewAt.toISOString()).to.equal('2026-12-04T08:00:00.000Z');
    clock.set(start + 8 * HOUR_MS - 1);
    expect(await renewer.tick()).to.equal(false);
    expect(applied).to.deep.equal([]);

    clock.set(start + 8 * HOUR_MS);
    fail = true;
    expect(await renewer.tick()).to.equal(false);
    expect(renewer.current.serial).to.equal('a');

    fail = false;
    expect(await renewer.tick()).to.equal(true);
    expect(applied).to.deep.equal(['renewed-1']);
    expect(renewer.current.serial).to.equal('renewed-1');
    expect(renewer.renewAt.getTime()).to.equal(start + 16 * HOUR_MS);
    expect(await renewer.tick()).to.equal(false);
  });
});
