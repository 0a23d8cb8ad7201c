/**
 * Audit checkpoints signed by keys inside SoftHSM through HsmSigner, verified offline with the
 * public key as the token reports it: the production path of DESIGN.md invariant 7.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AuditCheckpointer, AuditLog, verifyAuditLog, verifyAuditSqlite } from '../../../src/audit/index.js';
import { ManualClock, type KeyType } from '../../../src/core/index.js';
import { HsmSigner, HsmToken } from '../../../src/hsm/index.js';
import { SqliteStore } from '../../../src/store/index.js';
import { createTestToken } from '../../helpers/softhsm.js';

const T0 = new Date('2026-03-01T09:00:00.000Z');

describe('integration: audit checkpoints signed by an HSM key', function () {
  let token: HsmToken;
  let dir: string;

  before(async () => {
    const testToken = createTestToken('audit');
    token = await HsmToken.open({ modulePath: testToken.modulePath, tokenLabel: testToken.label, pin: testToken.pin, sessions: 2 });
    dir = mkdtempSync(join(tmpdir(), 'credbroker-audit-hsm-'));
  });

  after(async () => {
    // Guarded: when SoftHSM is missing, `before` failed with how to install it; say only that.
    if ((token as HsmToken | undefined) !== undefined) await token.close();
    if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  for (const keyType of ['P-256', 'P-384', 'Ed25519'] as KeyType[]) {
    it(`${keyType}: the checkpointer signs on the HSM, the log verifies with the token's public key, and tampering is named`, async () => {
      const label = `audit-${keyType}`;
      await token.generateKeyPair({ label, keyType });
      const signer = await HsmSigner.create(token, label, keyType);
      const pinned = (await token.findKey(label)).publicKey;
      expect(pinned).to.not.be.null;

      const path = join(dir, `${keyType}.db`);
      const clock = new ManualClock(T0);
      const store = await SqliteStore.open(path, { clock });
      const log = new AuditLog();
      const checkpointer = new AuditCheckpointer(store, signer, clock, { everyEntries: 8, everyMs: 60_000 });
      const signed: number[] = [];
      for (let n = 1; n <= 20; n++) {
        clock.advance(1_000);
        await store.transaction((tx) =>
          log.append(tx, { time: clock.now(), requestId: `req-${n}`, actor: 'spiffe://anonymizer.test/operators/alice', action: 'Issue', outcome: 'allowed', subject: 'spiffe://anonymizer.test/workers/blur', reason: '', details: { serial: `7f${n.toString(16).padStart(30, '0')}` } }),
        );
        const checkpoint = await checkpointer.tick();
        if (checkpoint !== null) signed.push(checkpoint.seq);
      }
      clock.advance(60_000);
      const last = await checkpointer.tick();
      if (last !== null) signed.push(last.seq);
      expect(signed).to.deep.equal([1, 9, 17, 20]);
      await store.close();

      const good = await verifyAuditSqlite(path, { publicKey: pinned! });
      expect(good).to.deep.include({ ok: true, entries: 20, checkpoints: 4, signaturesChecked: true, lastCheckpointSeq: 20 });

      const db = new Database(path);
      db.exec('DROP TRIGGER audit_entries_no_update');
      db.prepare("UPDATE audit_entries SET subject = 'spiffe://anonymizer.test/workers/export' WHERE seq = 12").run();
      db.close();
      const bad = await verifyAuditSqlite(path, { publicKey: pinned! });
      expect(bad).to.deep.include({ ok: false, firstBadSeq: 12 });
    });
  }

  it('checkpoints of one HSM key do not verify with another key of the same token', async () => {
    await token.generateKeyPair({ label: 'audit-a', keyType: 'P-256' });
    await token.generateKeyPair({ label: 'audit-b', keyType: 'P-256' });
    const signer = await HsmSigner.create(token, 'audit-a');
    const other = await HsmSigner.create(token, 'audit-b');
    const store = await SqliteStore.open(':memory:');
    const clock = new ManualClock(T0);
    await store.transaction((tx) => new AuditLog().append(tx, { time: T0, requestId: 'r', actor: 'anonymous', action: 'Enroll', outcome: 'denied', subject: 'jt1', reason: 'join_token.unknown', details: {} }));
    await new AuditCheckpointer(store, signer, clock).tick();
    const snapshot = await store.openAuditSnapshot();
    const result = verifyAuditLog(snapshot.entries, snapshot.checkpoints, { publicKey: other.publicKey });
    snapshot.close();
    await store.close();
    expect(result).to.deep.include({ ok: false, firstBadSeq: 1 });
    expect(result.reason).to.match(/signed by another key/);
  });
});
