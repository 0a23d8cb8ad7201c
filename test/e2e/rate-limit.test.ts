/** Enroll attempts per source address are bounded: RESOURCE_EXHAUSTED beyond, audited, refilled by time. */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { unary } from '../../src/agent/index.js';
import { grpcError, startE2eBroker, type E2eBroker } from './harness.js';

describe('e2e: Enroll rate limit per source address', function () {
  this.timeout(60_000);
  let e2e: E2eBroker;

  before(async () => {
    e2e = await startE2eBroker({ enrollBurst: 3 });
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  it('a burst of 3, then RESOURCE_EXHAUSTED (audited), then allowed again a minute later', async () => {
    const client = e2e.anonymous().enrollment;
    const attempt = (): Promise<grpc.ServiceError> => grpcError(unary(client, 'Enroll', { joinToken: 'cbjt1-wrong', csr: Buffer.alloc(0) }));
    for (let i = 0; i < 3; i++) expect((await attempt()).code).to.equal(grpc.status.UNAUTHENTICATED);
    const limited = await attempt();
    expect(limited.code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
    expect(limited.details).to.match(/too many enrollment attempts from this address; retry in \d+ s/);
    const last = await e2e.broker.store.transaction((tx) => tx.lastAuditEntry());
    expect(last).to.include({ action: 'Enroll', outcome: 'denied', reason: 'rate.enroll' });
    e2e.clock.offsetMs = 60_000;
    try {
      expect((await attempt()).code).to.equal(grpc.status.UNAUTHENTICATED);
    } finally {
      e2e.clock.offsetMs = 0;
    }
  });
});
