/**
 * The soak, short version of `npm run soak` (issue 7, item 6): 20 s at a steady 50 calls/s of
 * renewals and access tokens plus ten agents with 30 s certificates renewing by themselves,
 * against `credbroker serve` on 127.0.0.1. No error of any kind, every renewal durable and
 * audited, and the broker's RSS after the warm-up quarter does not grow by more than a generous
 * bound (a leak per call of a few KiB would pass it only in runs far longer: `npm run soak`
 * reports the figures; STYLE.md keeps speed and memory goals out of timed tests).
 */
import { expect } from 'chai';
import { formatSoakReport, runSoak } from '../../scripts/soak/soak-run.js';

/** Generous: warm-up and allocator noise stay far below it; an unbounded per-call leak at 1,000 calls does not. */
const MAX_RSS_GROWTH_BYTES = 150 * 1024 * 1024;

describe('e2e: soak (short)', function () {
  this.timeout(120_000);

  it('20 s at 50 calls/s with renewing agents: no errors, store consistent, RSS growth bounded', async () => {
    const report = await runSoak({ durationMs: 20_000, rate: 50, agents: 10, agentTtlSeconds: 30, identities: 8, sampleEveryMs: 2_500 });
    const summary = formatSoakReport(report);
    console.log(summary.replace(/^/gm, '      '));
    expect(report.errors, summary).to.deep.equal({});
    expect(report.check.problems, summary).to.deep.equal([]);
    expect(report.finalExit, summary).to.deep.equal({ code: 0, signal: null });
    // The steady rate was held: every scheduled call was sent (none held back by the in-flight cap).
    expect(Object.values(report.calls).reduce((sum, n) => sum + n, 0), summary).to.equal(1000);
    expect(report.agentRenewals, 'the agents renewed by themselves').to.be.greaterThan(0);
    expect(report.rssEndBytes - report.rssWarmBytes, summary).to.be.below(MAX_RSS_GROWTH_BYTES);
  });
});
