import { expect } from 'chai';
import Database from 'better-sqlite3';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuditCheckpointer,
  AuditLog,
  chainEntry,
  hashAuditEntry,
  readAuditFromSqlite,
  verifyAuditLog,
  verifyAuditSqlite,
  type AuditVerification,
} from '../../../src/audit/index.js';
import { ManualClock, SoftwareSigner } from '../../../src/core/index.js';
import { SqliteStore, type AuditCheckpoint, type AuditEntry } from '../../../src/store/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { T0, auditInput } from '../store/store-fixtures.js';

/** Rebuilds the chain from `from` (1-based) on, as someone with write access would. */
function rechain(entries: readonly AuditEntry[], from: number): AuditEntry[] {
  const out = entries.slice(0, from - 1);
  for (const entry of entries.slice(from - 1)) out.push(chainEntry(out.at(-1) ?? null, entry));
  return out;
}

/** Expects a failure at `seq` with a reason matching `reason`. */
function expectBad(result: AuditVerification, seq: number, reason: RegExp): void {
  expect(result.ok, JSON.stringify(result)).to.be.false;
  expect(result.firstBadSeq, result.reason).to.equal(seq);
  expect(result.reason).to.match(reason);
}

describe('verifyAuditLog', () => {
  let signer: SoftwareSigner;
  let otherSigner: SoftwareSigner;
  let entries: AuditEntry[];
  let checkpoints: AuditCheckpoint[];

  /** A log of 10 entries with checkpoints at 5 and 9, made by the real writer and checkpointer. */
  async function makeLog(by: SoftwareSigner): Promise<{ entries: AuditEntry[]; checkpoints: AuditCheckpoint[] }> {
    const store = await SqliteStore.open(':memory:');
    const clock = new ManualClock(T0);
    const log = new AuditLog();
    const checkpointer = new AuditCheckpointer(store, by, clock);
    const made: AuditCheckpoint[] = [];
    for (let n = 1; n <= 10; n++) {
      clock.advance(1_000);
      await store.transaction((tx) => log.append(tx, auditInput(n, { time: clock.now() })));
      const checkpoint = n === 5 || n === 9 ? await checkpointer.flush() : null;
      if (checkpoint !== null) made.push(checkpoint);
    }
    const snapshot = await store.openAuditSnapshot();
    const all = [...snapshot.entries];
    snapshot.close();
    await store.close();
    return { entries: all, checkpoints: made };
  }

  before(async () => {
    signer = await SoftwareSigner.generate('P-256');
    otherSigner = await SoftwareSigner.generate('P-256');
    ({ entries, checkpoints } = await makeLog(signer));
  });

  it('a good log verifies, with signatures checked against the pinned key', () => {
    expect(checkpoints.map((c) => c.seq)).to.deep.equal([5, 9]);
    const result = verifyAuditLog(entries, checkpoints, { publicKey: signer.publicKey });
    expect(result).to.deep.include({ ok: true, entries: 10, checkpoints: 2, headSeq: 10, signaturesChecked: true, lastCheckpointSeq: 9 });
    expect(result.firstBadSeq).to.be.undefined;
    expect(result.lastCheckpointTime).to.deep.equal(checkpoints[1]!.time);
  });

  it('without a key: the chain and checkpoint hashes are checked, and the result says signatures were not', () => {
    const result = verifyAuditLog(entries, checkpoints);
    expect(result).to.deep.include({ ok: true, signaturesChecked: false, checkpoints: 2 });
    expect(result.keySpkiSha256).to.be.undefined;
  });

  it('an empty log verifies (head 0)', () => {
    expect(verifyAuditLog([], [], { publicKey: signer.publicKey })).to.deep.include({ ok: true, entries: 0, headSeq: 0 });
  });

  describe('tampering, each named by the first bad seq', () => {
    const cases: {
      name: string;
      tamper: (e: AuditEntry[], c: AuditCheckpoint[]) => { entries: AuditEntry[]; checkpoints: AuditCheckpoint[] };
      seq: number;
      reason: RegExp;
    }[] = [
      {
        name: 'a changed field',
        tamper: (e, c) => ({ entries: e.map((x) => (x.seq === 7 ? { ...x, actor: 'spiffe://anonymizer.test/operators/mallory' } : x)), checkpoints: c }),
        seq: 7,
        reason: /hash does not match the content/,
      },
      {
        name: 'changed details',
        tamper: (e, c) => ({ entries: e.map((x) => (x.seq === 3 ? { ...x, details: { ...x.details, ttlSeconds: 86_400 } } : x)), checkpoints: c }),
        seq: 3,
        reason: /changed/,
      },
      {
        name: 'a changed field with its hash recomputed: the next entry\'s link breaks',
        tamper: (e, c) => ({
          entries: e.map((x) => {
            if (x.seq !== 8) return x;
            expect(x.outcome).to.equal('denied');
            const changed = { ...x, outcome: 'allowed' as const, reason: '' };
            return { ...changed, hash: hashAuditEntry(changed) };
          }),
          checkpoints: c,
        }),
        seq: 9,
        reason: /prev_hash does not match the hash of entry 8/,
      },
      {
        name: 'a consistent rewrite of the whole chain from entry 3: caught by the checkpoint at 5',
        tamper: (e, c) => ({ entries: rechain(e.map((x) => (x.seq === 3 ? { ...x, subject: 'someone else' } : x)), 3), checkpoints: c }),
        seq: 5,
        reason: /checkpoint at seq 5 signs head hash .* but the chain has/,
      },
      {
        name: 'a deleted entry',
        tamper: (e, c) => ({ entries: e.filter((x) => x.seq !== 6), checkpoints: c }),
        seq: 6,
        reason: /expected entry 6, found seq 7/,
      },
      {
        name: 'a deleted entry, later ones renumbered and rechained',
        tamper: (e, c) => ({ entries: rechain(e.filter((x) => x.seq !== 2).map((x, i) => ({ ...x, seq: i + 1 })), 2), checkpoints: c }),
        seq: 5,
        reason: /checkpoint at seq 5/,
      },
      {
        name: 'two entries swapped',
        tamper: (e, c) => ({ entries: [...e.slice(0, 5), e[6]!, e[5]!, ...e.slice(7)], checkpoints: c }),
        seq: 6,
        reason: /expected entry 6, found seq 7/,
      },
      {
        name: 'two entries swapped with their seqs: the link breaks',
        tamper: (e, c) => ({ entries: [...e.slice(0, 5), { ...e[6]!, seq: 6 }, { ...e[5]!, seq: 7 }, ...e.slice(7)], checkpoints: c }),
        seq: 6,
        reason: /prev_hash/,
      },
      {
        name: 'a duplicated entry',
        tamper: (e, c) => ({ entries: [...e.slice(0, 4), e[3]!, ...e.slice(4)], checkpoints: c }),
        seq: 5,
        reason: /expected entry 5, found seq 4/,
      },
      {
        name: 'a first entry that does not start at the genesis hash',
        tamper: (e, c) => ({ entries: [{ ...e[0]!, prevHash: 'f'.repeat(64) }, ...e.slice(1)], checkpoints: c }),
        seq: 1,
        reason: /genesis/,
      },
      {
        name: 'the log cut back before the last checkpoint',
        tamper: (e, c) => ({ entries: e.slice(0, 7), checkpoints: c }),
        seq: 8,
        reason: /ends at entry 7 but a checkpoint covers seq 9: entries 8..9 were removed/,
      },
      {
        name: 'a changed checkpoint hash',
        tamper: (e, c) => ({ entries: e, checkpoints: c.map((x) => (x.seq === 5 ? { ...x, hash: e[3]!.hash } : x)) }),
        seq: 5,
        reason: /checkpoint at seq 5 signs head hash/,
      },
      {
        name: 'a changed checkpoint time (the signature no longer covers it)',
        tamper: (e, c) => ({ entries: e, checkpoints: c.map((x) => (x.seq === 9 ? { ...x, time: new Date(x.time.getTime() + 1) } : x)) }),
        seq: 9,
        reason: /signature of the checkpoint at seq 9 does not verify/,
      },
      {
        name: 'a checkpoint moved to another seq',
        tamper: (e, c) => ({ entries: e, checkpoints: c.map((x) => (x.seq === 9 ? { ...x, seq: 8, hash: e[7]!.hash } : x)) }),
        seq: 8,
        reason: /does not verify/,
      },
      {
        name: 'checkpoints out of order',
        tamper: (e, c) => ({ entries: e, checkpoints: [...c].reverse() }),
        seq: 9,
        reason: /out of order|does not verify|signs head hash/,
      },
    ];

    for (const { name, tamper, seq, reason } of cases) {
      it(name, () => {
        const tampered = tamper(entries, checkpoints);
        expectBad(verifyAuditLog(tampered.entries, tampered.checkpoints, { publicKey: signer.publicKey }), seq, reason);
      });
    }

    it('a log and checkpoints made by another key', async () => {
      const forged = await makeLog(otherSigner);
      expectBad(verifyAuditLog(forged.entries, forged.checkpoints, { publicKey: signer.publicKey }), 5, /signed by another key/);
      // Without a pinned key, a forger's own checkpoints look fine: that is what --audit-key is for.
      expect(verifyAuditLog(forged.entries, forged.checkpoints)).to.deep.include({ ok: true, signaturesChecked: false });
    });

    it('a checkpoint signed by another key under our key\'s fingerprint', async () => {
      const ours = checkpoints[1]!;
      const store = await SqliteStore.open(':memory:');
      await store.transaction(async (tx) => {
        for (const entry of entries) await tx.insertAuditEntry(entry);
      });
      const theirs = await new AuditCheckpointer(store, otherSigner, new ManualClock(ours.time)).tick();
      await store.close();
      const forged = { ...theirs!, keySpkiSha256: ours.keySpkiSha256, seq: ours.seq, hash: ours.hash };
      expectBad(verifyAuditLog(entries, [checkpoints[0]!, forged], { publicKey: signer.publicKey }), 9, /does not verify/);
    });

    it('what it cannot see: a rewrite after the last checkpoint, or a cut after it', () => {
      const rewritten = rechain(entries.map((x) => (x.seq === 10 ? { ...x, actor: 'anonymous' } : x)), 10);
      expect(verifyAuditLog(rewritten, checkpoints, { publicKey: signer.publicKey })).to.deep.include({ ok: true, headSeq: 10 });
      expect(verifyAuditLog(entries.slice(0, 9), checkpoints, { publicKey: signer.publicKey })).to.deep.include({ ok: true, headSeq: 9 });
    });

    it('an entry source that fails while reading is a bad entry, not a crash', () => {
      function* broken(): Generator<AuditEntry> {
        yield entries[0]!;
        throw new SyntaxError('Unexpected token in JSON');
      }
      expectBad(verifyAuditLog(broken(), []), 2, /entry 2 cannot be read/);
    });
  });

  describe('on a SQLite file', () => {
    let dir: string;
    let path: string;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'credbroker-audit-'));
      path = join(dir, 'broker.db');
      const store = await SqliteStore.open(path);
      await store.transaction(async (tx) => {
        for (const entry of entries) await tx.insertAuditEntry(entry);
        for (const checkpoint of checkpoints) await tx.insertAuditCheckpoint(checkpoint);
      });
      await store.close();
    });

    after(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    it('reads the log read-only and verifies it', async () => {
      const snapshot = await readAuditFromSqlite(path);
      expect(snapshot.checkpoints).to.deep.equal(checkpoints);
      expect([...snapshot.entries]).to.deep.equal(entries);
      await snapshot.close();
      expect(await verifyAuditSqlite(path, { publicKey: signer.publicKey })).to.deep.include({ ok: true, entries: 10, checkpoints: 2 });
    });

    it('names the entry a raw UPDATE changed (after dropping the append-only trigger)', async () => {
      const copy = join(dir, 'tampered.db');
      copyFileSync(path, copy);
      const db = new Database(copy);
      db.exec('DROP TRIGGER audit_entries_no_update');
      db.prepare("UPDATE audit_entries SET outcome = 'allowed', reason = '' WHERE seq = 4").run();
      db.close();
      const result = await verifyAuditSqlite(copy, { publicKey: signer.publicKey });
      expectBad(result, 4, /hash does not match/);
    });

    it('refuses a file that is not a broker database', async () => {
      const error = await catchBrokerError(readAuditFromSqlite(join(dir, 'missing.db')));
      expect(error.code).to.equal('store.open');
    });
  });
});
