/**
 * Crash consistency, short version of `npm run crash` (issue 7, item 2): `credbroker serve` as a
 * child, a bounded issuance loop, three SIGKILLs at random points (after a random number of
 * successful calls, other calls in flight) with a restart on the same state each time, then a
 * SIGTERM stop. The store must come out consistent with itself and with every reply a client
 * saw (scripts/crash/crash-checks.ts): audit chain and checkpoints verify, certificates ⇔ audit
 * entries, join tokens redeemed ⇔ used for a stored serial, no serial twice, nothing a client
 * was told lost.
 */
import { expect } from 'chai';
import { formatCrashReport, runCrash } from '../../scripts/crash/crash-run.js';

describe('e2e: crash consistency (SIGKILL during issuance)', function () {
  this.timeout(120_000);

  it('three SIGKILLs mid-load: restarts each time, no error while serving, store consistent with every reply', async () => {
    const report = await runCrash({ kills: 3, workers: 6, callsBetweenKills: [10, 40] });
    const summary = formatCrashReport(report);
    expect(report.kills, summary).to.equal(3);
    expect(report.check.problems, summary).to.deep.equal([]);
    expect(report.servingErrors, summary).to.deep.equal({});
    expect(report.finalExit, summary).to.deep.equal({ code: 0, signal: null });
    // The kills really interrupted calls, and the dead broker was refused as UNAVAILABLE.
    expect(report.inFlightAtKill.reduce((sum, n) => sum + n, 0), summary).to.be.greaterThan(0);
    expect(new Set(report.probes.map((p) => p.status)), summary).to.deep.equal(new Set(['UNAVAILABLE']));
    expect(Object.keys(report.outageErrors).every((status) => status === 'UNAVAILABLE'), summary).to.equal(true);
    // Every kind of call succeeded, so every check had something to check.
    for (const op of ['CreateJoinToken', 'Enroll', 'Renew', 'Issue', 'IssueToken']) expect(report.succeeded[op] ?? 0, `${op}\n${summary}`).to.be.greaterThan(0);
    expect(report.check.figures.joinTokensRedeemed, summary).to.be.greaterThan(0);
    expect(report.check.figures.checkpoints, summary).to.be.greaterThan(0);
  });
});
