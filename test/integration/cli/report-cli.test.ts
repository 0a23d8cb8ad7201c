/**
 * `credbroker report` as the real executable on a broker database made here with known contents
 * and fixed dates: more audit entries and certificates than one page of the store (the report
 * pages through them and stops at the window's edges), a forced rotation, join tokens, a
 * checkpoint signed by a software audit key. Also: the sources from --db/--policy, the audit key as
 * SPKI or certificate PEM, a tampered log (exit 1, the report still printed), usage errors (exit 2).
 */
import { expect } from 'chai';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as x509 from '@peculiar/x509';
import { AuditCheckpointer, AuditLog } from '../../../src/audit/index.js';
import { ManualClock, SoftwareSigner } from '../../../src/core/index.js';
import { SignerCrypto } from '../../../src/pki/signer-crypto.js';
import { SqliteStore, type AuditEntryInput, type StoreTransaction } from '../../../src/store/index.js';
import type { MetricsReport } from '../../../src/cli/report/metrics-report.js';
import { runCli } from '../../helpers/cli.js';
import { certificate, joinToken, serialOf } from '../../unit/store/store-fixtures.js';
import { ALICE, BLUR, IMPORT, POLICY_YAML, W1 } from '../../unit/report/report-fixtures.js';

const T0 = new Date('2026-03-01T00:00:00.000Z');
const SECOND_MS = 1_000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
const at = (ms: number): Date => new Date(T0.getTime() + ms);
const ROTATION_ID = `rot-${'ab'.repeat(16)}`;
const WINDOW = ['--from', '2026-03-01', '--to', '2026-03-02'];

function entry(time: Date, actor: string, action: string, subject: string, details: AuditEntryInput['details']): AuditEntryInput {
  return { time, requestId: `req-${time.getTime()}`, actor, action, outcome: 'allowed', subject, reason: '', details };
}

describe('integration: credbroker report CLI', function () {
  this.timeout(60_000);
  let dir: string;
  let db: string;
  let policy: string;
  let spkiPem: string;
  let certPem: string;
  let otherPem: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'credbroker-report-cli-'));
    policy = join(dir, 'policy.yaml');
    writeFileSync(policy, POLICY_YAML);
    const signer = await SoftwareSigner.generate('P-256');
    spkiPem = join(dir, 'audit-key.pem');
    writeFileSync(spkiPem, signer.publicKey.export({ format: 'pem', type: 'spki' }));
    otherPem = join(dir, 'other-key.pem');
    writeFileSync(otherPem, (await SoftwareSigner.generate('P-256')).publicKey.export({ format: 'pem', type: 'spki' }));
    const crypto = await SignerCrypto.create(signer);
    const self = await x509.X509CertificateGenerator.createSelfSigned(
      { serialNumber: '01', name: 'CN=audit', notBefore: T0, notAfter: at(365 * 24 * HOUR_MS), signingAlgorithm: crypto.signingAlgorithm, keys: { privateKey: crypto.signingKey, publicKey: crypto.publicKey } },
      crypto.crypto,
    );
    certPem = join(dir, 'audit-cert.pem');
    writeFileSync(certPem, self.toString('pem'));

    db = join(dir, 'broker.db');
    const clock = new ManualClock(T0);
    const store = await SqliteStore.open(db, { clock, durability: 'normal' });
    const log = new AuditLog();
    const append = (inputs: readonly AuditEntryInput[]): Promise<void> =>
      store.transaction(async (tx: StoreTransaction) => {
        for (const input of inputs) await log.append(tx, input);
      });
    // seq 1 … 300: the 5 minutes before the window.
    await append(Array.from({ length: 300 }, (_, i) => entry(at(-300 * SECOND_MS + i * SECOND_MS), ALICE, 'GetCertificate', 'ab', {})));
    // seq 301 … 1800: 1,500 tokens of import, 10 s apart, latencies 0 … 99 ms fifteen times over.
    const tokens = Array.from({ length: 1500 }, (_, i) => {
      const time = at(i * 10 * SECOND_MS);
      return entry(time, IMPORT, 'IssueToken', 'storage.source', { tokenId: `t${i}`, scopes: 'media.source.write', expiresAt: new Date(time.getTime() + 5 * MINUTE_MS).toISOString(), bound: true, latencyMs: i % 100 });
    });
    await append(tokens.slice(0, 1000));
    // A signed checkpoint of seq 1 … 1300, made at T0 + 23h.
    clock.set(at(23 * HOUR_MS));
    expect((await new AuditCheckpointer(store, signer, clock).flush())?.seq).to.equal(1300);
    await append(tokens.slice(1000));
    // seq 1801 … 1803: a forced rotation of blur, and two renewals.
    await append([
      entry(at(5 * HOUR_MS), ALICE, 'ForceRotate', BLUR, { rotationId: ROTATION_ID, reason: 'superseded', targeted: 2, connected: 1 }),
      entry(at(5 * HOUR_MS + 90 * SECOND_MS), BLUR, 'Renew', BLUR, { serial: serialOf(9001), latencyMs: 7 }),
      entry(at(22 * HOUR_MS), BLUR, 'Renew', BLUR, { serial: serialOf(9002), latencyMs: 9 }),
    ]);
    // seq 1804 … 2003: the 200 s after the window.
    await append(Array.from({ length: 200 }, (_, i) => entry(at(24 * HOUR_MS + i * SECOND_MS), ALICE, 'GetCertificate', 'ab', {})));

    await store.transaction(async (tx) => {
      // 300 certificates of blur before the window (2h), newest at T0 − 1 min.
      for (let i = 0; i < 300; i++) await tx.insertCertificate(certificate(10_000 + i, { spiffeId: BLUR, issuedAt: at(-(i + 1) * MINUTE_MS), notAfter: at(-(i + 1) * MINUTE_MS + 2 * HOUR_MS) }));
      // 1,200 of import in the window, a minute apart: 30 min, every fourth 1 h (import's cap).
      for (let i = 0; i < 1200; i++) {
        const ttlMs = i % 4 === 0 ? HOUR_MS : 30 * MINUTE_MS;
        await tx.insertCertificate(certificate(20_000 + i, { spiffeId: IMPORT, issuedAt: at(i * MINUTE_MS), notAfter: at(i * MINUTE_MS + ttlMs) }));
      }
      // Live at the window's end: blur's renewal (2h, its cap) and workers/w1 (4h, the global cap).
      await tx.insertCertificate(certificate(9002, { spiffeId: BLUR, issuedAt: at(22 * HOUR_MS), notAfter: at(24 * HOUR_MS) }));
      await tx.insertCertificate(certificate(30_000, { spiffeId: W1, issuedAt: at(23 * HOUR_MS), notAfter: at(27 * HOUR_MS) }));
      await tx.insertRotation({ id: ROTATION_ID, selector: BLUR, reason: 'superseded', requestedBy: ALICE, requestedAt: at(5 * HOUR_MS) });
      await tx.insertRotationTarget({ rotationId: ROTATION_ID, serial: serialOf(10_000), spiffeId: BLUR, notAfter: at(6 * HOUR_MS), connected: true, status: 'rotated', newSerial: serialOf(9001), finishedAt: at(5 * HOUR_MS + 90 * SECOND_MS) });
      await tx.insertRotationTarget({ rotationId: ROTATION_ID, serial: serialOf(10_001), spiffeId: BLUR, notAfter: at(6 * HOUR_MS), connected: false, status: 'pending', newSerial: null, finishedAt: null });
      // Join tokens: two outstanding at the window's end, one used.
      await tx.insertJoinToken(joinToken(1, { createdAt: at(23 * HOUR_MS + 50 * MINUTE_MS), expiresAt: at(24 * HOUR_MS + 10 * MINUTE_MS) }));
      await tx.insertJoinToken(joinToken(2, { createdAt: at(23 * HOUR_MS + 55 * MINUTE_MS), expiresAt: at(24 * HOUR_MS + 5 * MINUTE_MS) }));
      await tx.insertJoinToken(joinToken(3, { createdAt: at(23 * HOUR_MS), expiresAt: at(25 * HOUR_MS), usedAt: at(23 * HOUR_MS + MINUTE_MS), usedForSerial: serialOf(30_000) }));
    });
    await store.close();
  });

  after(() => {
    if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  async function reportJson(args: readonly string[], database = db): Promise<{ status: number | null; report: MetricsReport; stderr: string }> {
    const result = await runCli(['report', '--db', database, '--policy', policy, ...WINDOW, '--json', ...args]);
    return { status: result.status, report: JSON.parse(result.stdout) as MetricsReport, stderr: result.stderr };
  }

  it('pages through the window and nothing beyond it: every figure as recorded', async () => {
    const { status, report, stderr } = await reportJson(['--audit-key', spkiPem]);
    expect(status, stderr).to.equal(0);
    expect(report.window).to.include({ from: '2026-03-01T00:00:00.000Z', to: '2026-03-02T00:00:00.000Z', asOf: '2026-03-02T00:00:00.000Z' });

    // 1,200 of import + blur's renewal + workers/w1; at the cap: every fourth of import, blur's, w1's.
    const certificates = report.secretTtl.certificates.all;
    expect(certificates.lifetimeMs).to.include({ count: 1202, min: 30 * MINUTE_MS, p50: 30 * MINUTE_MS, p90: HOUR_MS, max: 4 * HOUR_MS });
    expect(certificates.atCap).to.deep.include({ count: 302, of: 1202 });
    expect(report.secretTtl.tokens.lifetimeMs).to.include({ count: 1500, min: 5 * MINUTE_MS, max: 5 * MINUTE_MS });
    expect(report.secretTtl.joinTokens.outstandingAsOf).to.equal(2);

    const [rotation] = report.rotationMttr.rotations;
    // The pending target's certificate ended at T0 + 6h, long before now: expired.
    expect(rotation).to.include({ rotationId: ROTATION_ID, targeted: 2, connected: 1, rotated: 1, pending: 0, expired: 1 });
    expect(rotation?.mttrMs).to.include({ count: 1, p50: 90_000, max: 90_000 });

    // Live at the end: blur (renewed) and workers/w1 (not yet due).
    expect(report.rotationCoverage.automatic).to.deep.equal({ count: 1, of: 2, share: 0.5 });
    expect(report.rotationCoverage.notRenewed).to.deep.equal([{ spiffeId: W1, profile: 'service', notYetDue: true }]);
    expect(report.rotationCoverage.forced).to.deep.equal({ count: 1, of: 2, share: 0.5 });

    const byAction = Object.fromEntries(report.retrievalLatency.actions.map((a) => [a.action, a.latencyMs]));
    // 0 … 99 ms fifteen times: nearest ranks 750, 1425, 1485 of 1,500.
    expect(byAction.IssueToken).to.include({ count: 1500, min: 0, p50: 49, p95: 94, p99: 98, max: 99 });
    expect(byAction.Renew).to.include({ count: 2, p50: 7, max: 9 });

    const audit = report.auditability;
    expect(audit.entries, 'seq 301 … 1803').to.equal(1503);
    expect(audit.chain).to.include({ ok: true, entriesVerified: 2003, headSeq: 2003, checkpoints: 1, signaturesChecked: true });
    expect(audit.checkpointCoverage, 'seq 301 … 1300').to.deep.include({ count: 1000, of: 1503 });
    expect(audit.lastCheckpoint).to.include({ seq: 1300, time: '2026-03-01T23:00:00.000Z', entriesAfter: 703 });
    expect(report.permissionGranularity.use).to.deep.include({ tokens: 1500 });
  });

  it('takes the audit key as a certificate PEM too', async () => {
    const { status, report } = await reportJson(['--audit-key', certPem]);
    expect(status).to.equal(0);
    expect(report.auditability.chain).to.include({ ok: true, signaturesChecked: true });
  });

  it('a checkpoint signed by another key: the report says INVALID and exits 1', async () => {
    const { status, report, stderr } = await reportJson(['--audit-key', otherPem]);
    expect(status).to.equal(1);
    expect(report.auditability.chain).to.include({ ok: false, firstBadSeq: 1300 });
    expect(stderr).to.contain('the audit log is INVALID at entry 1300');
  });

  it('a rewritten entry: the text report is still printed, names the entry and exits 1', async () => {
    const copy = join(dir, 'tampered.db');
    copyFileSync(db, copy);
    const raw = new Database(copy);
    raw.exec('DROP TRIGGER audit_entries_no_update');
    raw.exec(`UPDATE audit_entries SET actor = 'spiffe://td.test/someone/else' WHERE seq = 500`);
    raw.close();
    const result = await runCli(['report', '--db', copy, '--policy', policy, ...WINDOW]);
    expect(result.status).to.equal(1);
    expect(result.stdout).to.contain('1. Secret TTL');
    expect(result.stdout).to.contain('hash chain of the whole log: INVALID at entry 500: the hash does not match the content');
    expect(result.stderr).to.contain('INVALID at entry 500');
    // The verifier stopped at entry 500; the window's later entries are still counted.
    const { status, report } = await reportJson([], copy);
    expect(status).to.equal(1);
    expect(report.auditability.entries).to.equal(1503);
    expect(report.retrievalLatency.actions.find((a) => a.action === 'IssueToken')?.latencyMs.count).to.equal(1500);
    expect(report.auditability.chain).to.include({ ok: false, firstBadSeq: 500, entriesVerified: 500 });
  });

  it('reads the database read-only: it must exist', async () => {
    const result = await runCli(['report', '--db', join(dir, 'missing.db'), '--policy', policy]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/credbroker: error: .*missing\.db/);
  });

  for (const [name, args, message] of [
    ['--json with --html', ['--json', '--html', 'x.html'], 'give either --json or --html, not both'],
    ['--since with --from', ['--since', '1h', '--from', '2026-03-01'], 'give either --since or --from/--to, not both'],
    ['a bare --since number', ['--since', '24'], '"24" is not a duration'],
    ['an unknown flag', ['--dbx', 'a.db'], "unknown option '--dbx'"],
  ] as const) {
    it(`usage error, exit 2: ${name}`, async () => {
      const result = await runCli(['report', '--policy', policy, '--db', db, ...args]);
      expect(result.status, result.stdout).to.equal(2);
      expect(result.stderr).to.contain(message);
    });
  }

  it('usage error, exit 2: no source at all', async () => {
    const result = await runCli(['report']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.contain('no broker database: give --config broker.yaml (its store.path) or --db <file>');
  });

  it('report exposure needs only the policy; it refuses the window flags', async () => {
    const ok = await runCli(['report', 'exposure', '--policy', policy]);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/^ {2}1 {2}spiffe:\/\/td\.test\/ops\/alice +operator/m);
    const refused = await runCli(['report', 'exposure', '--policy', policy, '--since', '1h']);
    expect(refused.status).to.equal(2);
    expect(refused.stderr).to.contain('report exposure reads only the policy');
  });
});
