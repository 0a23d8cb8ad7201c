/**
 * `credbroker report` on a real broker: the test makes the data (a join token, enrollments,
 * renewals, tokens, a refusal, a forced rotation with a connected agent, a signed checkpoint),
 * then runs the real executable against the running broker's database (read-only) and checks
 * every figure against what it did. The CLI runs as a child process, asynchronously, so the
 * in-process broker keeps serving meanwhile.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { newKeyAndCsr, unary, type BrokerClients } from '../../src/agent/index.js';
import type { MetricsReport } from '../../src/cli/report/metrics-report.js';
import type { ExposureReport } from '../../src/cli/report/exposure-report.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { expectRefused } from './expect-refused.js';
import { BLUR, IMPORT, OPERATOR, startE2eBroker, type ClientIdentity, type E2eBroker } from './harness.js';
import { openWatch } from './watch-stream.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

async function renew(e2e: E2eBroker, identity: ClientIdentity, ttlSeconds = 0): Promise<ClientIdentity> {
  const { keyPem, csrDer } = await newKeyAndCsr();
  const reply = await unary<{ serial: string; certificatePem: string; chainPem: string }>(e2e.as(identity).certificates, 'Renew', { csr: Buffer.from(csrDer), ttlSeconds });
  return { keyPem, certificatePem: reply.certificatePem, chainPem: reply.chainPem, serial: reply.serial };
}

function issueToken(clients: BrokerClients, audience: string, scopes: string[], ttlSeconds = 0): Promise<{ tokenId: string; bound: boolean }> {
  return unary(clients.tokens, 'IssueToken', { audience, scopes, ttlSeconds });
}

function expectOk(result: CliResult): void {
  expect(result.status, result.stderr).to.equal(0);
}

describe('e2e: credbroker report', function () {
  this.timeout(120_000);
  let e2e: E2eBroker;
  let out: string;
  let rotationMttrMaxMs: number;
  let checkpointSeq: number;

  before(async () => {
    e2e = await startE2eBroker();
    out = mkdtempSync(join(tmpdir(), 'credbroker-report-e2e-'));
    const ops = e2e.as(await e2e.enroll(await e2e.bootstrapToken(OPERATOR)));

    // A join token made by the operator (10 min), enrolled for 30 min, renewed for 30 min.
    const created = await unary<{ joinToken: string }>(ops.administration, 'CreateJoinToken', { spiffeId: IMPORT, ttlSeconds: 600 });
    const importer = await renew(e2e, await e2e.enroll(created.joinToken, 1800), 1800);
    const importClients = e2e.as(importer);
    // Bound tokens: the default 5 min, and 10 min (import's cap); a bearer token of blur for 1 h (its cap).
    await issueToken(importClients, 'storage.source', ['media.source.write']);
    await issueToken(importClients, 'storage.source', ['media.source.write'], 600);
    const blur = await e2e.enroll(await e2e.bootstrapToken(BLUR));
    expect((await issueToken(e2e.as(blur), 'storage.source', ['media.source.read'], 3600)).bound).to.equal(false);

    // A forced rotation of blur, its agent connected: RENEW_NOW, the renewal completes it.
    const watch = openWatch(e2e.as(blur));
    expect((await watch.next()).kind).to.equal('WATCHING');
    const started = await unary<{ rotationId: string }>(ops.rotation, 'ForceRotate', { selector: BLUR });
    expect((await watch.next()).kind).to.equal('RENEW_NOW');
    await renew(e2e, blur);
    await watch.ended;
    rotationMttrMaxMs = (await unary<{ mttrMaxMs: number }>(ops.rotation, 'GetRotation', { rotationId: started.rotationId })).mttrMaxMs;

    // Everything so far under a signed checkpoint; one refusal after it.
    const checkpoint = await e2e.broker.checkpointer.flush(e2e.clock.now());
    checkpointSeq = checkpoint?.seq ?? 0;
    expect(checkpointSeq).to.be.above(0);
    await expectRefused(e2e, () => issueToken(importClients, 'storage.source', ['media.source.read']), grpc.status.PERMISSION_DENIED, 'IssueToken', 'policy.scope');
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
    if ((out as string | undefined) !== undefined) rmSync(out, { recursive: true, force: true });
  });

  describe('--json, for the last hour', () => {
    let report: MetricsReport;

    before(async () => {
      const result = await runCli(['report', '--config', e2e.configPath, '--since', '1h', '--audit-key', join(e2e.dir, 'audit-key.pem'), '--json']);
      expectOk(result);
      report = JSON.parse(result.stdout) as MetricsReport;
    });

    it('secret TTL: every certificate, token and join token the test made, with their lifetimes and caps', () => {
      const { certificates, tokens, joinTokens } = report.secretTtl;
      // operator 1h, import 30m + 30m, blur 1h + 1h (the rotation's renewal).
      expect(certificates.all.lifetimeMs).to.include({ count: 5, min: 30 * MINUTE_MS, p50: HOUR_MS, max: HOUR_MS });
      expect(certificates.byProfile.map((p) => [p.profile, p.lifetimeMs.count])).to.deep.equal([['service', 4], ['operator', 1]]);
      expect(certificates.all.atCap, 'none at its cap (import 4h, the others 24h)').to.deep.equal({ count: 0, of: 5, share: 0 });
      // Token lifetimes are exp − decision time, rounded up to seconds: at most a second short of the TTL asked.
      expect(tokens.lifetimeMs.count).to.equal(3);
      expect(tokens.lifetimeMs.min).to.be.within(5 * MINUTE_MS - 1000, 5 * MINUTE_MS);
      expect(tokens.lifetimeMs.max).to.be.within(HOUR_MS - 1000, HOUR_MS);
      expect(tokens.atCap, 'the 10 min token of import and the 1 h token of blur').to.deep.equal({ count: 2, of: 3, share: 2 / 3 });
      expect(tokens.bound).to.deep.equal({ count: 2, of: 3, share: 2 / 3 });
      // The harness's bootstrap tokens record no TTL; the operator's records 600 s.
      expect(joinTokens).to.include({ created: 3, withoutTtl: 2, redeemed: 3, outstandingAsOf: 0 });
      expect(joinTokens.lifetimeMs).to.include({ count: 1, max: 10 * MINUTE_MS });
    });

    it('rotation MTTR: the forced rotation, with the MTTR GetRotation reports', () => {
      expect(report.rotationMttr.rotations).to.have.length(1);
      const [rotation] = report.rotationMttr.rotations;
      expect(rotation).to.include({ selector: BLUR, requestedBy: OPERATOR, targeted: 1, connected: 1, rotated: 1, pending: 0, expired: 0, revoked: 0, complete: true });
      expect(rotation?.mttrMs.max).to.equal(rotationMttrMaxMs);
      expect(report.rotationMttr.overall.mttrMs.p99).to.equal(rotationMttrMaxMs);
    });

    it('rotation coverage: import and blur renewed, the operator did not (not yet due)', () => {
      const coverage = report.rotationCoverage;
      expect(coverage.automatic).to.deep.equal({ count: 2, of: 3, share: 2 / 3 });
      expect(coverage.byProfile).to.deep.equal([
        { profile: 'service', identities: { count: 2, of: 2, share: 1 } },
        { profile: 'operator', identities: { count: 0, of: 1, share: 0 } },
      ]);
      expect(coverage.notRenewed).to.deep.equal([{ spiffeId: OPERATOR, profile: 'operator', notYetDue: true }]);
      expect(coverage.forced).to.deep.equal({ count: 1, of: 1, share: 1 });
    });

    it('permission granularity: the grants, and blur asking one of its two scopes', () => {
      const { policy, use } = report.permissionGranularity;
      expect(policy).to.include({ identities: 3, exact: 3, withTokens: 2, bearerGrants: 1, wildcardDnsNames: 0 });
      expect(use.tokens).to.equal(3);
      expect(use.fewerThanGranted).to.deep.equal({ count: 1, of: 3, share: 1 / 3 });
      expect(use.byIdentity.find((u) => u.spiffeId === BLUR)).to.deep.include({ tokens: 1, unusedScopes: ['media.anonymized.write'] });
    });

    it('retrieval latency: every Enroll, Renew and IssueToken measured', () => {
      const byAction = Object.fromEntries(report.retrievalLatency.actions.map((a) => [a.action, a]));
      expect(byAction.Enroll?.latencyMs.count).to.equal(3);
      expect(byAction.Renew?.latencyMs.count).to.equal(2);
      expect(byAction.IssueToken?.latencyMs.count).to.equal(3);
      for (const action of report.retrievalLatency.actions) {
        expect(action.withoutLatency, action.action).to.equal(0);
        expect(action.latencyMs.min, action.action).to.be.at.least(0);
        expect(action.latencyMs.max, action.action).to.be.below(30_000);
      }
    });

    it('auditability: every entry, attribution, the refusal, the chain and signatures verified, checkpoint coverage', async () => {
      const audit = report.auditability;
      const head = await e2e.broker.store.transaction((tx) => tx.lastAuditEntry());
      expect(audit.entries, 'the whole log is in the window').to.equal(head?.seq);
      expect(audit.byOutcome.denied).to.equal(1);
      expect(audit.refusals).to.deep.equal([{ outcome: 'denied', reason: 'policy.scope', count: 1 }]);
      // The three enrollments are the only anonymous calls, and each is tied to its identity by its join token.
      expect(audit.identifiedActor).to.deep.include({ count: audit.entries - 3, of: audit.entries });
      expect(audit.attributable.share).to.equal(1);
      expect(audit.chain).to.include({ ok: true, signaturesChecked: true, headSeq: head?.seq, firstBadSeq: null });
      const last = audit.lastCheckpoint;
      expect(last?.seq).to.be.at.least(checkpointSeq);
      expect(audit.checkpointCoverage.count).to.equal(last?.seq);
      expect(audit.checkpointCoverage.count + (last?.entriesAfter ?? 0)).to.equal(audit.entries);
    });
  });

  it('text: aligned tables with units', async () => {
    const result = await runCli(['report', '--config', e2e.configPath, '--since', '1h']);
    expectOk(result);
    expect(result.stdout).to.match(/^ {2}credential +issued +p50 +p90 +max +at policy cap$/m);
    expect(result.stdout).to.match(/^ {2}certificates +5 +1h +1h +1h +0\.0 % \(0\/5\)$/m);
    expect(result.stdout).to.match(/^ {2}Enroll +3 +[\d.]+ m?s/m);
    expect(result.stdout).to.contain('checkpoint signatures: NOT checked (pass --audit-key <pem> to check them)');
  });

  it('a window with no data says so in every section and exits 0', async () => {
    const result = await runCli(['report', '--config', e2e.configPath, '--from', '2020-01-01', '--to', '2020-01-02']);
    expectOk(result);
    for (const sentence of [
      'no certificates, signed tokens or join tokens were issued in this window',
      'no forced rotation was requested in this window',
      'no identity has a live certificate at 2020-01-02T00:00:00.000Z',
      'in use: no signed tokens were issued in this window',
      'no Enroll, Renew or IssueToken was allowed in this window',
      'no audit entries in this window',
    ]) {
      expect(result.stdout).to.contain(sentence);
    }
    const json = await runCli(['report', '--config', e2e.configPath, '--from', '2020-01-01', '--to', '2020-01-02', '--json']);
    expectOk(json);
    const empty = JSON.parse(json.stdout) as MetricsReport;
    expect(empty.auditability.entries).to.equal(0);
    expect(empty.auditability.identifiedActor.share).to.equal(null);
    expect(empty.rotationCoverage.automatic.share).to.equal(null);
  });

  it('--html writes one self-contained page with its charts', async () => {
    const page = join(out, 'report.html');
    const result = await runCli(['report', '--config', e2e.configPath, '--since', '1h', '--html', page]);
    expectOk(result);
    expect(result.stdout).to.contain(`written to ${page}`);
    const html = readFileSync(page, 'utf8');
    expect(html).to.match(/^<!doctype html>/);
    expect(html).to.not.match(/https?:\/\//);
    expect(html).to.not.match(/<link\b|\bsrc\s*=|url\(|@import/i);
    expect(html.match(/<svg class="chart"/g)?.length).to.be.at.least(5);
    for (const heading of ['1. Secret TTL', '2. Rotation MTTR', '3. Rotation coverage', '4. Permission granularity', '5. Retrieval latency', '6. Auditability']) {
      expect(html).to.contain(heading);
    }
  });

  it('report exposure ranks the policy\'s identities and flags the outliers', async () => {
    const result = await runCli(['report', 'exposure', '--config', e2e.configPath, '--json']);
    expectOk(result);
    const ranking = JSON.parse(result.stdout) as ExposureReport;
    // operator: 24 h × (5 pairs × 10) × 2; blur: (24 h + 1 h) × 4 × 2; import: (4 h + 10 m) × 1 × 1.
    expect(ranking.identities.map((e) => [e.id, e.score])).to.deep.equal([
      [OPERATOR, 2400],
      [BLUR, 200],
      [IMPORT, 4.17],
    ]);
    const flags = Object.fromEntries(ranking.identities.map((e) => [e.id, e.flags.map((f) => f.code)]));
    expect(flags[OPERATOR]).to.have.members(['operator', 'certificate-ttl-at-cap']);
    expect(flags[BLUR]).to.have.members(['bearer-tokens', 'certificate-ttl-at-cap', 'token-ttl-at-cap']);
    expect(flags[IMPORT]).to.deep.equal([]);
    const text = await runCli(['report', 'exposure', '--config', e2e.configPath]);
    expectOk(text);
    expect(text.stdout).to.contain(`1. ${OPERATOR} (operator, exact): 2400 = 24 h × 50 × 2`);
  });
});
