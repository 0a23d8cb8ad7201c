/**
 * Fuzzing target (b) of issue 7, short run: random and raw RPC messages over mutual TLS against
 * a real broker (test/fuzz/rpc-target.ts); `npm run fuzz` runs 10,000+ per mode.
 */
import { expect } from 'chai';
import { fuzzRpcTarget } from '../fuzz/rpc-target.js';
import { startE2eBroker, type E2eBroker } from './harness.js';

describe('e2e: RPC fuzzing over mTLS (short run)', function () {
  this.timeout(120_000);
  let e2e: E2eBroker;

  before(async () => {
    e2e = await startE2eBroker({ enrollBurst: 10_000 });
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  for (const [mode, runs] of [['fields', 300], ['raw', 150]] as const) {
    it(`${runs} ${mode === 'fields' ? 'random typed messages' : 'raw protobuf messages'}: documented statuses only, nothing written on refusal, valid input behind every success, the broker keeps answering`, async () => {
      const report = await fuzzRpcTarget(e2e, runs, { mode, seed: mode === 'fields' ? 7 : 8 });
      expect(report.examples, report.format()).to.deep.equal([]);
      expect(report.crashes).to.equal(0);
      expect(report.acceptedInvalid).to.equal(0);
      expect(report.cases).to.equal(runs);
      // Reaches past the front door: successes and several kinds of refusal.
      expect(report.accepted, report.format()).to.be.greaterThan(0);
      expect(Object.keys(report.refused).length, report.format()).to.be.greaterThan(2);
    });
  }
});
