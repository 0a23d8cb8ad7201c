/**
 * `credbroker audit verify` and `audit export` as an auditor runs them: the real executable on a
 * broker database whose checkpoints a SoftHSM key signed, the audit key given as a SPKI or a
 * certificate PEM. A tampered copy fails with exit 1 and names the entry.
 */
import { expect } from 'chai';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as x509 from '@peculiar/x509';
import { AuditCheckpointer, AuditLog } from '../../../src/audit/index.js';
import { ManualClock } from '../../../src/core/index.js';
import { HsmSigner, HsmToken } from '../../../src/hsm/index.js';
import { SignerCrypto } from '../../../src/pki/signer-crypto.js';
import { SqliteStore, type AuditEntryInput } from '../../../src/store/index.js';
import { runCli } from '../../helpers/cli.js';
import { createTestToken } from '../../helpers/softhsm.js';

const T0 = new Date('2026-03-01T09:00:00.000Z');

function input(n: number, time: Date): AuditEntryInput {
  return {
    time,
    requestId: `req-${n}`,
    actor: n % 2 === 0 ? 'spiffe://anonymizer.test/operators/alice' : 'anonymous',
    action: n % 2 === 0 ? 'Revoke' : 'Enroll',
    outcome: n % 3 === 0 ? 'denied' : 'allowed',
    subject: `spiffe://anonymizer.test/workers/w${n}`,
    reason: n % 3 === 0 ? 'join_token.used' : '',
    details: { serial: `7f${n.toString(16).padStart(30, '0')}`, ttlSeconds: 3600 },
  };
}

const pem = (label: string, der: Uint8Array): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').trimEnd()}\n-----END ${label}-----\n`;

describe('integration: credbroker audit CLI', function () {
  let token: HsmToken;
  let dir: string;
  let db: string;
  let spkiPem: string;
  let certPem: string;
  let otherSpkiPem: string;

  before(async () => {
    const testToken = createTestToken('audit-cli');
    token = await HsmToken.open({ modulePath: testToken.modulePath, tokenLabel: testToken.label, pin: testToken.pin, sessions: 2 });
    dir = mkdtempSync(join(tmpdir(), 'credbroker-audit-cli-'));
    await token.generateKeyPair({ label: 'audit-2026', keyType: 'P-256' });
    await token.generateKeyPair({ label: 'not-audit', keyType: 'P-256' });
    const signer = await HsmSigner.create(token, 'audit-2026');
    const other = await HsmSigner.create(token, 'not-audit');

    spkiPem = join(dir, 'audit.pub.pem');
    writeFileSync(spkiPem, signer.publicKey.export({ format: 'pem', type: 'spki' }));
    otherSpkiPem = join(dir, 'other.pub.pem');
    writeFileSync(otherSpkiPem, other.publicKey.export({ format: 'pem', type: 'spki' }));
    // The audit key's certificate, self-signed on the HSM (as a ceremony could record it).
    const crypto = await SignerCrypto.create(signer);
    const certificate = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: '01',
        name: 'CN=credbroker audit 2026',
        notBefore: T0,
        notAfter: new Date(T0.getTime() + 365 * 86_400_000),
        signingAlgorithm: crypto.signingAlgorithm,
        keys: { privateKey: crypto.signingKey, publicKey: crypto.publicKey },
      },
      crypto.crypto,
    );
    certPem = join(dir, 'audit.cert.pem');
    writeFileSync(certPem, pem('CERTIFICATE', new Uint8Array(certificate.rawData)));

    // A broker database: 12 entries, checkpoints at 5 and 10 signed on the HSM.
    db = join(dir, 'broker.db');
    const clock = new ManualClock(T0);
    const store = await SqliteStore.open(db, { clock });
    const log = new AuditLog();
    const checkpointer = new AuditCheckpointer(store, signer, clock);
    for (let n = 1; n <= 12; n++) {
      clock.advance(1_000);
      await store.transaction((tx) => log.append(tx, input(n, clock.now())));
      if (n === 5 || n === 10) expect((await checkpointer.flush())?.seq).to.equal(n);
    }
    await store.close();
  });

  after(async () => {
    // Guarded: when SoftHSM is missing, `before` failed with how to install it; say only that.
    if ((token as HsmToken | undefined) !== undefined) await token.close();
    if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** A copy of the database with entry `seq` changed behind the broker's back. */
  function tamperedCopy(name: string, sql: string): string {
    const copy = join(dir, name);
    copyFileSync(db, copy);
    const raw = new Database(copy);
    raw.exec('PRAGMA foreign_keys = OFF; DROP TRIGGER audit_entries_no_update; DROP TRIGGER audit_entries_no_delete');
    raw.exec(sql);
    raw.close();
    return copy;
  }

  it('audit verify --help documents the flags', async () => {
    const result = await runCli(['audit', 'verify', '--help']);
    expect(result.status).to.equal(0);
    expect(result.stdout).to.contain('--db').and.to.contain('--audit-key').and.to.contain('--json');
  });

  it('passes on a good database with the audit key as SPKI PEM, and prints a summary', async () => {
    const result = await runCli(['audit', 'verify', '--db', db, '--audit-key', spkiPem]);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.contain('audit log ok: 12 entries, hash chain intact');
    expect(result.stdout).to.match(/checkpoints: 2, last at entry 10 \(2026-03-01T09:00:10\.000Z, \S+ ago\); 2 entries after it/);
    expect(result.stdout).to.contain('checkpoint signatures verified with the audit key');
    expect(result.stderr).to.equal('');
  });

  it('passes with the audit key given as a certificate PEM', async () => {
    const result = await runCli(['audit', 'verify', '--db', db, '--audit-key', certPem]);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.contain('checkpoint signatures verified');
  });

  it('without --audit-key: passes, but warns that signatures were not checked', async () => {
    const result = await runCli(['audit', 'verify', '--db', db]);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stderr).to.contain('checkpoint signatures were NOT checked');
  });

  it('--json gives the same facts to a machine', async () => {
    const result = await runCli(['audit', 'verify', '--db', db, '--audit-key', spkiPem, '--json']);
    expect(result.status, result.stderr).to.equal(0);
    const parsed = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(parsed).to.deep.include({ ok: true, entries: 12, headSeq: 12, checkpoints: 2, signaturesChecked: true, lastCheckpointSeq: 10, firstBadSeq: null, reason: null });
    expect(parsed.lastCheckpointTime).to.equal('2026-03-01T09:00:10.000Z');
  });

  it('fails on a tampered copy with exit 1, naming the entry on stderr', async () => {
    const copy = tamperedCopy('changed.db', "UPDATE audit_entries SET outcome = 'allowed', reason = '' WHERE seq = 3");
    const result = await runCli(['audit', 'verify', '--db', copy, '--audit-key', spkiPem]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/^audit log INVALID at entry 3: the hash does not match the content/m);
    expect(result.stdout).to.equal('');
    const json = await runCli(['audit', 'verify', '--db', copy, '--json']);
    expect(json.status).to.equal(1);
    expect(JSON.parse(json.stdout)).to.deep.include({ ok: false, firstBadSeq: 3 });
  });

  it('names a deleted entry, and a log cut back past a checkpoint', async () => {
    const deleted = await runCli(['audit', 'verify', '--db', tamperedCopy('deleted.db', 'DELETE FROM audit_entries WHERE seq = 7'), '--audit-key', spkiPem]);
    expect(deleted.status).to.equal(1);
    expect(deleted.stderr).to.contain('audit log INVALID at entry 7: expected entry 7, found seq 8');
    const cut = await runCli(['audit', 'verify', '--db', tamperedCopy('cut.db', 'DELETE FROM audit_entries WHERE seq >= 9'), '--audit-key', spkiPem]);
    expect(cut.status).to.equal(1);
    expect(cut.stderr).to.contain('audit log INVALID at entry 9:').and.to.contain('entries 9..10 were removed');
  });

  it('fails when the checkpoints were signed by another key than the one given', async () => {
    const result = await runCli(['audit', 'verify', '--db', db, '--audit-key', otherSpkiPem]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/audit log INVALID at entry 5: the checkpoint at seq 5 was signed by another key/);
  });

  it('verifies a database a broker is writing to (read-only, WAL)', async () => {
    const live = join(dir, 'live.db');
    copyFileSync(db, live);
    const store = await SqliteStore.open(live);
    try {
      const previous = await store.transaction((tx) => tx.lastAuditEntry());
      await store.transaction((tx) => new AuditLog().append(tx, input(13, new Date((previous?.time.getTime() ?? 0) + 1000))));
      const result = await runCli(['audit', 'verify', '--db', live, '--audit-key', spkiPem]);
      expect(result.status, result.stderr).to.equal(0);
      expect(result.stdout).to.contain('audit log ok: 13 entries');
      await store.transaction((tx) => new AuditLog().append(tx, input(14, new Date())));
    } finally {
      await store.close();
    }
  });

  it('says what is wrong with a missing database or an unusable key file', async () => {
    const missing = await runCli(['audit', 'verify', '--db', join(dir, 'nope.db')]);
    expect(missing.status).to.equal(1);
    expect(missing.stderr).to.contain('cannot open the database').and.to.contain('nope.db');
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello\n');
    const badKey = await runCli(['audit', 'verify', '--db', db, '--audit-key', notPem]);
    expect(badKey.status).to.equal(1);
    expect(badKey.stderr).to.contain('neither a PUBLIC KEY nor a CERTIFICATE');
    const noDb = await runCli(['audit', 'verify']);
    expect(noDb.status).to.equal(2);
  });

  it('audit export prints every checkpoint and entry as JSON lines', async () => {
    const result = await runCli(['audit', 'export', '--db', db]);
    expect(result.status, result.stderr).to.equal(0);
    const lines = result.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as { type: string; seq: number; hash: string });
    expect(lines.map((l) => `${l.type}:${l.seq}`)).to.deep.equal([
      'checkpoint:5',
      'checkpoint:10',
      ...Array.from({ length: 12 }, (_, i) => `entry:${i + 1}`),
    ]);
    expect(lines[0]?.hash).to.equal(lines.find((l) => l.type === 'entry' && l.seq === 5)?.hash);
  });
});
