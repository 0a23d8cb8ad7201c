import { expect } from 'chai';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../../src/core/index.js';
import { SQLITE_MIGRATIONS, SQLITE_SCHEMA_VERSION, SqliteStore, type SqliteMigration } from '../../../src/store/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { storeContract } from './store-contract.js';
import { T0, certificate, chain, serialOf } from './store-fixtures.js';

let dir: string;
let files = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'credbroker-store-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const freshPath = (): string => join(dir, `store-${++files}.db`);

storeContract('SqliteStore :memory:', () => SqliteStore.open(':memory:', { clock: new ManualClock(T0) }));
storeContract('SqliteStore file', () => SqliteStore.open(freshPath(), { clock: new ManualClock(T0) }));

/** A raw connection to inspect or damage a database behind the store's back. */
function raw(path: string, run: (db: Database.Database) => void): void {
  const db = new Database(path);
  try {
    run(db);
  } finally {
    db.close();
  }
}

const EXTRA: SqliteMigration = { version: SQLITE_MIGRATIONS.length + 1, name: 'test-extra', sql: 'CREATE TABLE extra (id INTEGER PRIMARY KEY) STRICT;' };

describe('SqliteStore', () => {
  describe('open', () => {
    it('uses WAL, synchronous FULL by default, foreign keys and a busy timeout', async () => {
      const store = await SqliteStore.open(freshPath());
      try {
        expect(store.durability).to.equal('full');
        expect(store.settings()).to.deep.equal({ journalMode: 'wal', synchronous: 'full', foreignKeys: true, busyTimeoutMs: 5000 });
      } finally {
        await store.close();
      }
    });

    it('creates a new database file, and its WAL, readable by its owner only', async () => {
      const path = freshPath();
      const store = await SqliteStore.open(path);
      await store.transaction((tx) => tx.insertCertificate(certificate(1)));
      try {
        expect(statSync(path).mode & 0o777).to.equal(0o600);
        expect(statSync(`${path}-wal`).mode & 0o777).to.equal(0o600);
      } finally {
        await store.close();
      }
    });

    it('durability normal sets synchronous NORMAL; busyTimeoutMs is applied', async () => {
      const store = await SqliteStore.open(freshPath(), { durability: 'normal', busyTimeoutMs: 250 });
      try {
        expect(store.settings()).to.include({ journalMode: 'wal', synchronous: 'normal', busyTimeoutMs: 250 });
      } finally {
        await store.close();
      }
    });

    it('records the migrations once, with the clock\'s time; reopening changes nothing and keeps the data', async () => {
      const path = freshPath();
      const first = await SqliteStore.open(path, { clock: new ManualClock(T0) });
      await first.transaction((tx) => tx.insertCertificate(certificate(1)));
      expect(first.schemaVersion).to.equal(SQLITE_SCHEMA_VERSION);
      await first.close();
      const second = await SqliteStore.open(path, { clock: new ManualClock(T0.getTime() + 1000) });
      expect((await second.transaction((tx) => tx.getCertificate(serialOf(1))))?.serial).to.equal(serialOf(1));
      await second.close();
      raw(path, (db) => {
        expect(db.prepare('SELECT version, name, applied_at FROM schema_migrations').all()).to.deep.equal(
          SQLITE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name, applied_at: T0.getTime() })),
        );
        expect(db.pragma('application_id', { simple: true })).to.equal(0x6372626b);
      });
    });

    it('applies a new migration to an existing database', async () => {
      const path = freshPath();
      await (await SqliteStore.open(path)).close();
      const upgraded = await SqliteStore.open(path, { migrations: [...SQLITE_MIGRATIONS, EXTRA] });
      expect(upgraded.schemaVersion).to.equal(SQLITE_SCHEMA_VERSION + 1);
      await upgraded.close();
      raw(path, (db) => {
        expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'extra'").pluck().get()).to.equal('extra');
      });
    });

    it('a failing migration is rolled back whole: version and tables unchanged', async () => {
      const path = freshPath();
      await (await SqliteStore.open(path)).close();
      const broken: SqliteMigration = { version: SQLITE_MIGRATIONS.length + 1, name: 'broken', sql: 'CREATE TABLE half (id INTEGER); INSERT INTO nowhere VALUES (1);' };
      const error = await catchBrokerError(SqliteStore.open(path, { migrations: [...SQLITE_MIGRATIONS, broken] }));
      expect(error.kind).to.equal('internal');
      raw(path, (db) => {
        expect(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).to.equal(SQLITE_SCHEMA_VERSION);
        expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'half'").pluck().get()).to.equal(0);
      });
    });

    it('refuses a database whose schema is newer than this code, and leaves it alone', async () => {
      const path = freshPath();
      await (await SqliteStore.open(path, { migrations: [...SQLITE_MIGRATIONS, EXTRA] })).close();
      const error = await catchBrokerError(SqliteStore.open(path));
      expect([error.kind, error.code]).to.deep.equal(['conflict', 'store.schema_too_new']);
      expect(error.publicMessage).to.contain(`schema version ${SQLITE_SCHEMA_VERSION + 1}`).and.to.contain(`(${SQLITE_SCHEMA_VERSION})`);
      raw(path, (db) => {
        expect(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).to.equal(SQLITE_SCHEMA_VERSION + 1);
      });
      const readOnly = await catchBrokerError(SqliteStore.open(path, { readOnly: true }));
      expect(readOnly.code).to.equal('store.schema_too_new');
    });

    it('refuses a database whose recorded migration is not this code\'s', async () => {
      const path = freshPath();
      await (await SqliteStore.open(path)).close();
      raw(path, (db) => db.prepare("UPDATE schema_migrations SET name = 'someone-else' WHERE version = 1").run());
      expect((await catchBrokerError(SqliteStore.open(path))).code).to.equal('store.schema_mismatch');
    });

    it('refuses a database another program made, and a file that is not a database', async () => {
      const foreign = freshPath();
      raw(foreign, (db) => db.exec('CREATE TABLE photos (id INTEGER)'));
      const error = await catchBrokerError(SqliteStore.open(foreign));
      expect([error.kind, error.code]).to.deep.equal(['conflict', 'store.not_credbroker']);
      raw(foreign, (db) => {
        expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'schema_migrations'").pluck().get()).to.equal(0);
      });
      const text = freshPath();
      writeFileSync(text, 'this is not a database, it is a note to self that is long enough to have a header\n'.repeat(10));
      expect((await catchBrokerError(SqliteStore.open(text))).code).to.equal('store.corrupt');
    });

    it('says which file cannot be opened', async () => {
      const error = await catchBrokerError(SqliteStore.open(join(dir, 'no-such-dir', 'x.db')));
      expect([error.kind, error.code]).to.deep.equal(['unavailable', 'store.open']);
      expect(error.publicMessage).to.contain(join(dir, 'no-such-dir', 'x.db'));
    });
  });

  describe('read-only', () => {
    it('reads while a writer has the file open, and refuses every write', async () => {
      const path = freshPath();
      const writer = await SqliteStore.open(path);
      await writer.transaction((tx) => tx.insertCertificate(certificate(1)));
      const reader = await SqliteStore.open(path, { readOnly: true });
      try {
        expect((await reader.transaction((tx) => tx.getCertificate(serialOf(1))))?.serial).to.equal(serialOf(1));
        const error = await catchBrokerError(reader.transaction((tx) => tx.insertCertificate(certificate(2))));
        expect([error.kind, error.code]).to.deep.equal(['internal', 'store.read_only']);
        await writer.transaction((tx) => tx.insertCertificate(certificate(3)));
        expect((await reader.transaction((tx) => tx.getCertificate(serialOf(3))))?.serial).to.equal(serialOf(3));
      } finally {
        await reader.close();
        await writer.close();
      }
    });

    it('refuses a missing file (never creates one) and an unmigrated schema', async () => {
      const missing = join(dir, 'missing.db');
      expect((await catchBrokerError(SqliteStore.open(missing, { readOnly: true }))).code).to.equal('store.open');
      const path = freshPath();
      await (await SqliteStore.open(path)).close();
      const error = await catchBrokerError(SqliteStore.open(path, { readOnly: true, migrations: [...SQLITE_MIGRATIONS, EXTRA] }));
      expect(error.code).to.equal('store.schema_too_old');
    });
  });

  describe('the audit tables are append-only', () => {
    it('UPDATE and DELETE of entries and checkpoints fail, even through a raw connection', async () => {
      const path = freshPath();
      const store = await SqliteStore.open(path);
      const entries = chain(2);
      await store.transaction(async (tx) => {
        for (const entry of entries) await tx.insertAuditEntry(entry);
        await tx.insertAuditCheckpoint({ seq: 2, hash: entries[1]!.hash, time: T0, algorithm: 'ES256', keySpkiSha256: 'a'.repeat(64), signature: 'AAAA' });
      });
      await store.close();
      raw(path, (db) => {
        expect(() => db.prepare("UPDATE audit_entries SET actor = 'x' WHERE seq = 1").run()).to.throw(/append-only/);
        expect(() => db.prepare('DELETE FROM audit_entries WHERE seq = 2').run()).to.throw(/append-only/);
        expect(() => db.prepare("UPDATE audit_checkpoints SET hash = 'x'").run()).to.throw(/append-only/);
        expect(() => db.prepare('DELETE FROM audit_checkpoints').run()).to.throw(/append-only/);
        expect(db.prepare('SELECT count(*) FROM audit_entries').pluck().get()).to.equal(2);
      });
    });
  });

  describe('locks held by another process', () => {
    it('a write lock held elsewhere past busyTimeoutMs fails with unavailable store.busy; the store recovers', async () => {
      const path = freshPath();
      const store = await SqliteStore.open(path, { busyTimeoutMs: 0 });
      const other = new Database(path);
      try {
        other.exec('BEGIN IMMEDIATE');
        const error = await catchBrokerError(store.transaction((tx) => tx.insertCertificate(certificate(1))));
        expect([error.kind, error.code, error.retryable]).to.deep.equal(['unavailable', 'store.busy', true]);
        other.exec('ROLLBACK');
        await store.transaction((tx) => tx.insertCertificate(certificate(1)));
      } finally {
        other.close();
        await store.close();
      }
    });
  });

  describe('failures inside a batch', () => {
    it('a full disk fails the work that hit it; what resolved is stored, what rejected is not', async () => {
      // A test migration caps the database size for this connection: SQLITE_FULL on demand.
      const cap: SqliteMigration = { version: SQLITE_MIGRATIONS.length + 1, name: 'cap', sql: 'PRAGMA max_page_count = 64;' };
      const store = await SqliteStore.open(':memory:', { migrations: [...SQLITE_MIGRATIONS, cap] });
      const big = (n: number) => certificate(n, { der: new Uint8Array(512 * 1024).fill(n) });
      const outcomes = await Promise.allSettled([
        store.transaction((tx) => tx.insertCertificate(certificate(1))),
        store.transaction((tx) => tx.insertCertificate(big(2))),
        store.transaction((tx) => tx.insertCertificate(certificate(3))),
      ]);
      const full = outcomes[1];
      expect(full.status).to.equal('rejected');
      const reason = (full as PromiseRejectedResult).reason as { kind: string; code: string };
      expect([reason.kind, reason.code]).to.deep.equal(['unavailable', 'store.io']);
      for (const [index, outcome] of outcomes.entries()) {
        const stored = await store.transaction((tx) => tx.getCertificate(serialOf(index + 1)));
        expect(stored !== null, `certificate ${index + 1}: ${outcome.status}`).to.equal(outcome.status === 'fulfilled');
      }
      await store.close();
    });
  });

  describe('audit snapshot', () => {
    it('reads checkpoints and entries in seq order from one snapshot; writers wait until it is closed', async () => {
      const store = await SqliteStore.open(':memory:');
      const entries = chain(5);
      await store.transaction(async (tx) => {
        for (const entry of entries) await tx.insertAuditEntry(entry);
        await tx.insertAuditCheckpoint({ seq: 3, hash: entries[2]!.hash, time: T0, algorithm: 'ES256', keySpkiSha256: 'a'.repeat(64), signature: 'AAAA' });
      });
      const snapshot = await store.openAuditSnapshot();
      let written = false;
      const more = chain(1, entries[4], 6);
      const writing = store.transaction((tx) => tx.insertAuditEntry(more[0]!)).then(() => {
        written = true;
      });
      expect(snapshot.checkpoints.map((c) => c.seq)).to.deep.equal([3]);
      expect([...snapshot.entries]).to.deep.equal(entries);
      expect(() => [...snapshot.entries]).to.throw(/once/);
      await new Promise((resolve) => setImmediate(resolve));
      expect(written, 'the writer waits for the snapshot').to.be.false;
      snapshot.close();
      snapshot.close();
      await writing;
      expect((await store.transaction((tx) => tx.lastAuditEntry()))?.seq).to.equal(6);
      await store.close();
    });
  });

  describe('close', () => {
    it('lets queued transactions finish, then refuses new ones', async () => {
      const store = await SqliteStore.open(':memory:');
      const queued = Array.from({ length: 5 }, (_, i) => store.transaction((tx) => tx.insertCertificate(certificate(i + 1)).then(() => i)));
      const closing = store.close();
      expect((await catchBrokerError(store.transaction((tx) => tx.lastAuditEntry()))).code).to.equal('store.closed');
      expect(await Promise.all(queued)).to.deep.equal([0, 1, 2, 3, 4]);
      await closing;
      expect(() => store.settings()).to.throw(/closed/);
    });
  });
});
