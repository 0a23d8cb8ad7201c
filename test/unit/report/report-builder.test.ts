/**
 * The report's computations on one known hour (report-fixtures.ts): each figure worked out by
 * hand next to its assertion; an empty window gives zero counts and null shares (never NaN or a
 * division by zero) and says so in every section of the text.
 */
import { expect } from 'chai';
import { ReportBuilder } from '../../../src/cli/report/report-builder.js';
import type { MetricsReport } from '../../../src/cli/report/metrics-report.js';
import { reportText } from '../../../src/cli/report/report-text.js';
import { parseReportWindow } from '../../../src/cli/report/report-window.js';
import { ALICE, BLUR, HOUR_MS, IMPORT, ISSUED, LIVE, MINUTE_MS, NOW, ROTATIONS, VERIFICATION, W1, W3, WINDOW, fixtureEntries, fixturePolicy } from './report-fixtures.js';

function fixtureReport(): { report: MetricsReport; builder: ReportBuilder } {
  const builder = new ReportBuilder({ window: WINDOW, now: NOW, policy: fixturePolicy(), sources: { database: '/var/lib/credbroker/broker.db', policy: 'policy.yaml' } });
  for (const entry of fixtureEntries()) builder.addEntry(entry);
  for (const certificate of ISSUED) builder.addIssuedCertificate(certificate);
  for (const certificate of LIVE) builder.addLiveCertificate(certificate);
  for (const { rotation, targets } of ROTATIONS) builder.addRotation(rotation, targets);
  return { report: builder.build({ verification: VERIFICATION, outstandingJoinTokens: 3 }), builder };
}

/** Every number anywhere in `value`. */
function numbersIn(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.flatMap(numbersIn);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(numbersIn);
  return [];
}

describe('report/report-builder', () => {
  const { report, builder } = fixtureReport();

  it('names the window, the sources and the policy version', () => {
    expect(report).to.include({ kind: 'credbroker.report', version: 1, generatedAt: NOW.toISOString() });
    expect(report.window).to.deep.equal({ from: '2026-03-01T09:00:00.000Z', to: '2026-03-01T10:00:00.000Z', asOf: '2026-03-01T10:00:00.000Z', durationMs: HOUR_MS, label: 'last 1h' });
    expect(report.sources).to.include({ database: '/var/lib/credbroker/broker.db', policy: 'policy.yaml', trustDomain: 'td.test' });
    expect(report.sources.policySha256).to.match(/^[0-9a-f]{64}$/);
  });

  it('lists the rotations of the window\'s ForceRotate entries, once each', () => {
    expect(builder.rotationIds).to.deep.equal(['rot-1', 'rot-2']);
  });

  describe('secret TTL', () => {
    it('certificates issued in the window: lifetimes rounded up to seconds, share at the identity\'s cap', () => {
      const { all, byProfile } = report.secretTtl.certificates;
      // c1 30m, c2 2h (400 ms past a second: still the cap), c3 1h, c4 30m, c5 30m; c0 is before the window.
      expect(all.lifetimeMs).to.include({ count: 5, min: 30 * MINUTE_MS, p50: 30 * MINUTE_MS, p90: 2 * HOUR_MS, max: 2 * HOUR_MS });
      expect(all.atCap, 'only c2 is at its cap (blur: 2h); import\'s cap is 1h').to.deep.equal({ count: 1, of: 5, share: 0.2 });
      expect(all.notInPolicy).to.equal(0);
      expect(byProfile.map((p) => p.profile)).to.deep.equal(['service']);
      expect(all.histogram.find((b) => b.upTo === 30 * MINUTE_MS)?.count).to.equal(3);
      expect(all.histogram.find((b) => b.upTo === 60 * MINUTE_MS)?.count).to.equal(1);
      expect(all.histogram.find((b) => b.upTo === 120 * MINUTE_MS)?.count).to.equal(1);
      expect(all.histogram.reduce((total, b) => total + b.count, 0)).to.equal(5);
    });

    it('signed tokens: expiresAt − decision time; caps per identity; bound share', () => {
      const { tokens } = report.secretTtl;
      // 5m (250 ms after iat: rounded up), 10m (import's cap), 15m (blur's cap).
      expect(tokens.lifetimeMs).to.include({ count: 3, min: 5 * MINUTE_MS, p50: 10 * MINUTE_MS, max: 15 * MINUTE_MS });
      expect(tokens.atCap).to.deep.equal({ count: 2, of: 3, share: 2 / 3 });
      expect(tokens.bound).to.deep.equal({ count: 2, of: 3, share: 2 / 3 });
    });

    it('join tokens: TTLs from CreateJoinToken, cap from the policy; enrollments redeem them', () => {
      const { joinTokens } = report.secretTtl;
      expect(joinTokens.lifetimeMs).to.include({ count: 2, min: 15 * MINUTE_MS, max: 30 * MINUTE_MS });
      expect(joinTokens.atCap).to.deep.equal({ count: 1, of: 2, share: 0.5 });
      expect(joinTokens).to.include({ created: 2, withoutTtl: 0, redeemed: 2, outstandingAsOf: 3 });
    });
  });

  describe('rotation MTTR', () => {
    it('per rotation: counts and MTTR as GetRotation reports them, at the report time', () => {
      const [first, second] = report.rotationMttr.rotations;
      expect(first).to.include({ rotationId: 'rot-1', selector: BLUR, requestedBy: ALICE, targeted: 1, connected: 1, rotated: 1, pending: 0, expired: 0, revoked: 0, complete: true, oldestPendingAgeMs: null });
      expect(first?.mttrMs).to.include({ count: 1, p50: 30_000, p99: 30_000, max: 30_000 });
      // w2's certificate ended at T0 + 50 min, before the report: expired, not pending.
      expect(second).to.include({ rotationId: 'rot-2', targeted: 3, rotated: 0, pending: 2, expired: 1, complete: false, oldestPendingAgeMs: 15 * MINUTE_MS });
      expect(second?.mttrMs).to.include({ count: 0, p50: null, max: null });
    });

    it('overall: sums, and MTTR over every rotated target', () => {
      expect(report.rotationMttr.overall).to.deep.include({ rotations: 2, targeted: 4, connected: 1, rotated: 1, pending: 2, expired: 1, revoked: 0, oldestPendingAgeMs: 15 * MINUTE_MS });
      expect(report.rotationMttr.overall.mttrMs.p99).to.equal(30_000);
    });
  });

  describe('rotation coverage', () => {
    it('identities with a live certificate that renewed in the window, server certificates aside', () => {
      const coverage = report.rotationCoverage;
      // Live: blur, import, workers/w1, workers/w3; renewed: blur and import.
      expect(coverage.automatic).to.deep.equal({ count: 2, of: 4, share: 0.5 });
      expect(coverage.byProfile).to.deep.equal([{ profile: 'service', identities: { count: 2, of: 4, share: 0.5 } }]);
      expect(coverage.notRenewed).to.deep.equal([
        { spiffeId: W1, profile: 'service', notYetDue: true },
        { spiffeId: W3, profile: 'service', notYetDue: false },
      ]);
      expect(coverage.forced).to.deep.equal({ count: 1, of: 4, share: 0.25 });
    });
  });

  describe('permission granularity', () => {
    it('from the policy: pairs per grant, patterns, wildcard DNS, bearer grants', () => {
      const { policy } = report.permissionGranularity;
      expect(policy).to.include({ identities: 4, exact: 3, patterns: 1, anyDepthPatterns: 1, withTokens: 3, wildcardDnsNames: 1, bearerGrants: 1 });
      // import 1 × 1, blur 2 × 2, workers 1 × 3.
      expect(policy.pairsPerGrant).to.include({ count: 3, p50: 3, max: 4 });
      expect(policy.byIdentity.map((g) => [g.id, g.match, g.pairs, g.bearer])).to.deep.equal([
        [ALICE, 'exact', 0, null],
        [IMPORT, 'exact', 1, false],
        [BLUR, 'exact', 4, true],
        ['spiffe://td.test/workers/**', 'any-depth', 3, false],
      ]);
    });

    it('from use: scopes per token, tokens narrower than the grant, scopes granted and never asked', () => {
      const { use } = report.permissionGranularity;
      expect(use.tokens).to.equal(3);
      expect(use.scopesPerToken).to.include({ count: 3, p50: 1, max: 1 });
      expect(use.fewerThanGranted, 'blur asked 1 of its 2 scopes').to.deep.equal({ count: 1, of: 3, share: 1 / 3 });
      const [blur, importer] = use.byIdentity;
      expect(blur).to.deep.include({ spiffeId: BLUR, policyId: BLUR, tokens: 1, unusedScopes: ['media.anonymized.write'] });
      expect(blur?.scopesUsed).to.deep.equal({ count: 1, of: 2, share: 0.5 });
      expect(blur?.audiencesUsed).to.deep.equal({ count: 1, of: 2, share: 0.5 });
      expect(importer).to.deep.include({ spiffeId: IMPORT, tokens: 2, unusedScopes: [] });
      expect(importer?.fewerThanGranted).to.deep.equal({ count: 0, of: 2, share: 0 });
    });
  });

  it('retrieval latency: latencyMs of allowed Enroll, Renew, IssueToken; entries without it counted apart', () => {
    const byAction = Object.fromEntries(report.retrievalLatency.actions.map((a) => [a.action, a]));
    expect(byAction.Enroll?.latencyMs).to.include({ count: 2, p50: 12, p95: 20, p99: 20, max: 20 });
    expect(byAction.Renew?.latencyMs).to.include({ count: 2, p50: 30, max: 40 });
    expect(byAction.Renew?.withoutLatency).to.equal(1);
    expect(byAction.IssueToken?.latencyMs).to.include({ count: 3, p50: 4, max: 5 });
  });

  it('auditability: window entries, attribution, refusals, the verifier\'s verdict, checkpoint coverage and age', () => {
    const audit = report.auditability;
    // Seq 2 … 17 are in the window; seq 1 (T0 − 5 min) and seq 18 (T0 + 61 min) are not.
    expect(audit.entries).to.equal(16);
    expect(audit.byOutcome).to.deep.equal({ allowed: 13, denied: 3, failed: 0 });
    expect(audit.identifiedActor).to.deep.equal({ count: 12, of: 16, share: 0.75 });
    expect(audit.attributable, 'plus the two allowed enrollments').to.deep.equal({ count: 14, of: 16, share: 14 / 16 });
    expect(audit.refusals).to.deep.equal([
      { outcome: 'denied', reason: 'join_token.used', count: 1 },
      { outcome: 'denied', reason: 'peer.no_certificate', count: 1 },
      { outcome: 'denied', reason: 'policy.scope', count: 1 },
    ]);
    expect(audit.chain).to.deep.equal({ ok: true, entriesVerified: 40, headSeq: 40, signaturesChecked: true, checkpoints: 2, keySpkiSha256: 'ab'.repeat(32), firstBadSeq: null, problem: null });
    expect(audit.checkpointCoverage, 'seq 2 … 13 of 2 … 17').to.deep.equal({ count: 12, of: 16, share: 0.75 });
    expect(audit.lastCheckpoint).to.deep.equal({ seq: 13, time: '2026-03-01T09:50:00.000Z', ageMs: 10 * MINUTE_MS, entriesAfter: 27 });
  });

  it('a broken chain is reported with its first bad entry', () => {
    const broken = new ReportBuilder({ window: WINDOW, now: NOW, policy: fixturePolicy(), sources: { database: 'db', policy: 'p' } }).build({
      verification: { ok: false, entries: 7, checkpoints: 0, signaturesChecked: false, headSeq: 6, firstBadSeq: 7, reason: 'the hash does not match the content: the entry was changed' },
      outstandingJoinTokens: 0,
    });
    expect(broken.auditability.chain).to.include({ ok: false, firstBadSeq: 7, problem: 'the hash does not match the content: the entry was changed' });
    expect(broken.auditability.lastCheckpoint).to.equal(null);
    expect(reportText(broken).join('\n')).to.contain('INVALID at entry 7');
  });

  it('the JSON holds no NaN or infinity, and round-trips', () => {
    expect(numbersIn(report).every(Number.isFinite)).to.equal(true);
    expect(JSON.parse(JSON.stringify(report))).to.deep.equal(report);
  });

  describe('a window with no data', () => {
    const empty = new ReportBuilder({
      window: parseReportWindow({ from: '2020-01-01', to: '2020-01-02' }, NOW),
      now: NOW,
      policy: fixturePolicy(),
      sources: { database: 'db', policy: 'policy.yaml' },
    });
    // The same data, all of it outside the window.
    for (const entry of fixtureEntries()) empty.addEntry(entry);
    for (const certificate of ISSUED) empty.addIssuedCertificate(certificate);
    const report = empty.build({ verification: { ok: true, entries: 0, checkpoints: 0, signaturesChecked: false, headSeq: 0 }, outstandingJoinTokens: 0 });

    it('has zero counts and null figures and shares, never NaN', () => {
      expect(report.secretTtl.certificates.all.lifetimeMs).to.deep.include({ count: 0, p50: null, max: null });
      expect(report.secretTtl.certificates.all.atCap).to.deep.equal({ count: 0, of: 0, share: null });
      expect(report.secretTtl.tokens.bound.share).to.equal(null);
      expect(report.rotationMttr.rotations).to.deep.equal([]);
      expect(report.rotationMttr.overall.mttrMs.count).to.equal(0);
      expect(report.rotationCoverage.automatic).to.deep.equal({ count: 0, of: 0, share: null });
      expect(report.rotationCoverage.forced.share).to.equal(null);
      expect(report.permissionGranularity.use.fewerThanGranted.share).to.equal(null);
      expect(report.retrievalLatency.actions.every((a) => a.latencyMs.count === 0 && a.latencyMs.p99 === null)).to.equal(true);
      expect(report.auditability.entries).to.equal(0);
      expect(report.auditability.identifiedActor.share).to.equal(null);
      expect(report.auditability.checkpointCoverage.share).to.equal(null);
      expect(numbersIn(report).every(Number.isFinite)).to.equal(true);
    });

    it('says so plainly, section by section', () => {
      const text = reportText(report).join('\n');
      for (const sentence of [
        'no certificates, signed tokens or join tokens were issued in this window',
        'no forced rotation was requested in this window',
        'no identity has a live certificate at 2020-01-02T00:00:00.000Z',
        'forced rotations: none targeted a certificate in this window',
        'in use: no signed tokens were issued in this window',
        'no Enroll, Renew or IssueToken was allowed in this window',
        'no audit entries in this window',
        'last checkpoint: none yet',
      ]) {
        expect(text).to.contain(sentence);
      }
      expect(text).to.not.match(/NaN|Infinity|undefined/);
    });
  });

  describe('text', () => {
    const text = reportText(report);

    it('prints aligned tables with units', () => {
      const header = text.findIndex((line) => /^ {2}credential +issued +p50 +p90 +max +at policy cap$/.test(line));
      expect(header, text.join('\n')).to.be.greaterThan(-1);
      const rows = text.slice(header, header + 5);
      // Right-aligned figures end in the same column as their header.
      const end = (line: string | undefined): number => (line ?? '').length;
      expect(rows.map(end).every((length) => length === end(rows[0]))).to.equal(true);
      expect(text).to.include.members(['  certificates        5  30m   2h   2h   20.0 % (1/5)', '  signed tokens       3  10m  15m  15m   66.7 % (2/3)']);
      expect(text.join('\n')).to.match(/Enroll +2 +12 ms +20 ms +20 ms +20 ms/);
      expect(text.join('\n')).to.match(/rot-1 +spiffe:\/\/td\.test\/pipeline\/blur +superseded +1 +1 +1 +0 +0 +0 +30\.0 s +30\.0 s +30\.0 s/);
      expect(text.join('\n')).to.contain('spiffe://td.test/workers/w1 (service): not yet due');
      expect(text.join('\n')).to.contain('last checkpoint: entry 13 at 2026-03-01T09:50:00.000Z, 10m ago; 27 entries after it');
      expect(text.join('\n')).to.contain('window entries covered by a signed checkpoint: 75.0 % (12/16)');
    });
  });
});
