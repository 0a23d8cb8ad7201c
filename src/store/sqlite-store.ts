/**
 * The embedded store: one SQLite file (better-sqlite3) per broker.
 *
 * ## Durability
 *
 * The database runs in WAL mode. {@link SqliteStoreOptions.durability} chooses `synchronous`:
 *
 * - `full` (default): the WAL is fsync'd at every commit. A committed transaction survives an
 *   application crash **and** a power loss or kernel panic.
 * - `normal`: the WAL is fsync'd only at checkpoints. A committed transaction survives an
 *   application crash (the WAL is in the OS page cache), and the database is never corrupted, but
 *   a power loss can roll back the last transactions.
 *
 * For a CA the default is `full`: a rolled-back commit means a certificate that was handed out
 * but is not on record (it cannot be listed, and `revokeCertificate` does not know its serial),
 * a join token that becomes usable again, and audit entries that vanish — against DESIGN.md
 * invariants 7 and 8. `normal` is acceptable only where the disk's write cache is protected
 * (battery-backed controller) or the broker is disposable (tests, benchmarks). Group commit (below)
 * pays for most of the difference under load.
 *
 * ## Concurrency and group commit
 *
 * better-sqlite3 is synchronous and the store has one connection. Transactions are queued and
 * run one at a time, in call order, in batches: a batch is one SQLite transaction
 * (`BEGIN IMMEDIATE`, so the write lock is taken up front and never fails half-way on a lock
 * upgrade), each caller's work inside its own `SAVEPOINT` (undone alone if the work throws), then
 * one `COMMIT` — one fsync for the whole batch. Callers see exactly the semantics of one
 * transaction each: their work runs after every earlier one, sees its effects, and the promise
 * settles only after the COMMIT (if the COMMIT fails, every work of the batch fails with it).
 * Before each batch the store yields to the event loop so incoming requests can join it; a batch
 * holds at most 64 transactions. Another process (e.g. `credbroker audit verify`) may read the file
 * concurrently: WAL readers do not block the writer. A lock held by another process for longer
 * than `busyTimeoutMs` fails with `store.busy` (unavailable, retryable).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { BrokerError, systemClock, toBrokerError, type Clock } from '../core/index.js';
import type { AuditCheckpoint, AuditEntry } from './audit-records.js';
import { AsyncMutex, type Release } from './async-mutex.js';
import { decodePageToken, effectivePageSize, encodePageToken, filterFingerprint } from './pagination.js';
import {
  AUDIT_GENESIS_HASH,
  AUDIT_OUTCOMES,
  CERTIFICATE_PROFILE_NAMES,
  checkAuditCheckpoint,
  checkAuditEntry,
  checkCertificateRecord,
  checkCounterName,
  checkJoinTokenRecord,
  checkRevocationReason,
  checkRotationRecord,
  checkRotationTargetRecord,
  checkSerial,
  detailsJson,
  timeMs,
} from './record-checks.js';
import { isSqliteError, mapSqliteError, type SqliteErrorContext } from './sqlite-errors.js';
import { SQLITE_APPLICATION_ID, SQLITE_MIGRATIONS, type SqliteMigration } from './sqlite-migrations.js';
import type {
  AuditFilter,
  CertificateFilter,
  CertificateRecord,
  JoinTokenRecord,
  Page,
  RotationRecord,
  RotationTargetRecord,
  Store,
  StoreTransaction,
  StoredRevocationReason,
} from './store.js';
import {
  AUDIT_COLUMNS,
  CERTIFICATE_COLUMNS,
  CHECKPOINT_COLUMNS,
  JOIN_TOKEN_COLUMNS,
  ROTATION_COLUMNS,
  ROTATION_TARGET_COLUMNS,
  auditEntryFromRow,
  certificateFromRow,
  checkpointFromRow,
  filterError,
  filterTime,
  joinTokenFromRow,
  rotationFromRow,
  rotationTargetFromRow,
  type AuditCheckpointRow,
  type AuditEntryRow,
  type CertificateRow,
  type JoinTokenRow,
  type RotationRow,
  type RotationTargetRow,
} from './store-rows.js';

/** `synchronous` setting of the WAL: see the module comment. */
export type SqliteDurability = 'normal' | 'full';

/** Default time to wait for a lock held by another process, in ms. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/** Options of {@link SqliteStore.open}. */
export interface SqliteStoreOptions {
  /** Clock for `schema_migrations.applied_at` (default: the system clock). */
  readonly clock?: Clock;
  /** Default `full` (see the module comment); ignored for `:memory:` and read-only stores. */
  readonly durability?: SqliteDurability;
  /**
   * How long to wait for a lock held by another process, in ms (default 5,000). better-sqlite3
   * waits synchronously, so the event loop stalls meanwhile: only a second writing process (e.g.
   * `credbroker bootstrap-operator` next to a running broker) can make it wait at all.
   */
  readonly busyTimeoutMs?: number;
  /**
   * Open an existing database read-only (offline verification, export): no migration runs, the
   * schema must be one this code knows, and every write fails with `store.read_only`.
   */
  readonly readOnly?: boolean;
  /** Test seam: the migrations to apply (default {@link SQLITE_MIGRATIONS}). */
  readonly migrations?: readonly SqliteMigration[];
}

/**
 * The audit log as of one moment, for offline verification and export: every checkpoint, and
 * every entry in seq order read lazily. The store runs no transaction until {@link close}.
 */
export interface SqliteAuditSnapshot {
  /** Every checkpoint, in seq order. */
  readonly checkpoints: readonly AuditCheckpoint[];
  /** Every entry, in seq order; iterate once. */
  readonly entries: Iterable<AuditEntry>;
  /** Ends the snapshot (also if the entries were not read to the end). */
  close(): void;
}

/** What {@link SqliteStore.settings} reports. */
export interface SqliteSettings {
  /** `wal` for a file, `memory` for `:memory:`. */
  readonly journalMode: string;
  readonly synchronous: 'off' | 'normal' | 'full' | 'extra';
  readonly foreignKeys: boolean;
  readonly busyTimeoutMs: number;
}

type Statement = Database.Statement;

/** A transaction waiting for its batch. */
interface Pending {
  readonly work: (tx: StoreTransaction) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** Most transactions committed together: bounds the wait of the first one in a batch. */
const MAX_BATCH = 64;


/** A {@link Store} in one SQLite file. */
export class SqliteStore implements Store {
  /** The database file (or `:memory:`). */
  readonly path: string;
  /** The `synchronous` mode in force (`normal` for `:memory:`, where it does not apply). */
  readonly durability: SqliteDurability;
  /** True when opened read-only. */
  readonly readOnly: boolean;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Statement>();
  readonly #mutex = new AsyncMutex();
  readonly #queue: Pending[] = [];
  #draining: Promise<void> | null = null;
  #closing = false;
  /** Marks the async context of a running transaction, to refuse nested ones (a deadlock). */
  readonly #inTransaction = new AsyncLocalStorage<true>();
  #closed = false;

  private constructor(db: Database.Database, path: string, durability: SqliteDurability, readOnly: boolean) {
    this.#db = db;
    this.path = path;
    this.durability = durability;
    this.readOnly = readOnly;
  }

  /**
   * Opens (creating it, mode 0600, if needed, unless read-only) the database at `path` and brings
   * its schema up to date. `:memory:` gives a private in-memory database (tests).
   * @throws BrokerError unavailable `store.open` when the file cannot be opened (path and reason
   *   named); conflict `store.not_credbroker` for a database another program made;
   *   conflict `store.schema_too_new` for a schema newer than this code; conflict
   *   `store.schema_mismatch` when a recorded migration differs from this code's;
   *   conflict `store.schema_too_old` when opening an unmigrated database read-only
   */
  static open(path: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
    // Asynchronous like every Store method (a networked store connects); SQLite opens at once.
    try {
      return Promise.resolve(SqliteStore.#openNow(path, options));
    } catch (error) {
      return Promise.reject(mapSqliteError(error, { operation: `open ${path}` }));
    }
  }

  static #openNow(path: string, options: SqliteStoreOptions): SqliteStore {
    const readOnly = options.readOnly === true;
    const memory = path === ':memory:';
    let db: Database.Database;
    try {
      // A new database is born 0600 (SQLite gives its -wal and -shm files the same mode): it
      // holds no secret, but every identity and decision of the site.
      if (!readOnly && !memory) closeSync(openSync(path, 'a', 0o600));
      db = new Database(path, { readonly: readOnly, fileMustExist: readOnly, timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
    } catch (error) {
      throw new BrokerError('unavailable', {
        code: 'store.open',
        publicMessage: `cannot open the database ${path}: ${error instanceof Error ? error.message : String(error)}`,
        cause: error,
      });
    }
    const durability: SqliteDurability = memory ? 'normal' : (options.durability ?? 'full');
    try {
      if (readOnly) {
        db.pragma('query_only = ON');
      } else {
        const mode = String(db.pragma('journal_mode = WAL', { simple: true }));
        if (mode !== 'wal' && !memory) {
          throw new BrokerError('unavailable', { code: 'store.open', publicMessage: `cannot switch ${path} to WAL mode (got ${mode})` });
        }
        db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
        db.pragma('foreign_keys = ON');
      }
      // Schema-embedded SQL may not call functions with side effects (defence in depth).
      db.pragma('trusted_schema = OFF');
      const store = new SqliteStore(db, path, durability, readOnly);
      const migrations = options.migrations ?? SQLITE_MIGRATIONS;
      if (readOnly) store.#checkSchema(migrations);
      else store.#migrate(migrations, options.clock ?? systemClock);
      return store;
    } catch (error) {
      db.close();
      throw mapSqliteError(error, { operation: `open ${path}` });
    }
  }

  /** The schema version of the database (the highest migration applied). */
  get schemaVersion(): number {
    this.#checkOpen();
    return Number(this.#db.prepare('SELECT coalesce(max(version), 0) FROM schema_migrations').pluck().get());
  }

  /** The connection's settings as SQLite reports them (health output, tests). */
  settings(): SqliteSettings {
    this.#checkOpen();
    const synchronous = Number(this.#db.pragma('synchronous', { simple: true }));
    return Object.freeze({
      journalMode: String(this.#db.pragma('journal_mode', { simple: true })),
      synchronous: (['off', 'normal', 'full', 'extra'] as const)[synchronous] ?? 'off',
      foreignKeys: Number(this.#db.pragma('foreign_keys', { simple: true })) === 1,
      busyTimeoutMs: Number(this.#db.pragma('busy_timeout', { simple: true })),
    });
  }

  /**
   * Runs `work` in a transaction (see {@link Store.transaction}); with group commit: see the
   * module comment. Resolves only once the commit is on disk as {@link durability} says.
   * @throws what `work` throws, unchanged (its changes undone); BrokerError internal
   *   `store.nested_transaction` when called inside a transaction of this store; unavailable
   *   `store.closed`, `store.busy`, `store.io` or `store.rolled_back` (retry) when the commit fails
   */
  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    if (this.#closed || this.#closing) return Promise.reject(this.#closedError());
    if (this.#inTransaction.getStore() === true) {
      return Promise.reject(
        new BrokerError('internal', {
          code: 'store.nested_transaction',
          publicMessage: 'internal error',
          logMessage: 'store: transaction() called inside a transaction (it would wait for itself forever)',
        }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (this.#draining === null) this.#draining = this.#drain();
    });
  }

  /**
   * Opens a consistent read-only view of the audit log (checkpoints read first, entries lazily
   * in seq order) for offline verification and export. Transactions wait until it is closed.
   * @throws BrokerError unavailable `store.closed` after {@link close}
   */
  async openAuditSnapshot(): Promise<SqliteAuditSnapshot> {
    this.#checkOpen();
    const release = await this.#mutex.acquire();
    try {
      this.#checkOpen();
      this.#db.exec('BEGIN');
      const checkpoints = this.#statement(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq`)
        .all()
        .map((row) => checkpointFromRow(row as AuditCheckpointRow));
      return this.#snapshot(checkpoints, release);
    } catch (error) {
      if (this.#db.open && this.#db.inTransaction) this.#db.exec('ROLLBACK');
      release();
      throw mapSqliteError(error, { operation: 'open audit snapshot' });
    }
  }

  /** Waits for running transactions, then closes the database; later calls fail with `store.closed`. */
  async close(): Promise<void> {
    this.#closing = true;
    // Queued transactions still run; new ones are refused.
    while (this.#draining !== null) await this.#draining;
    const release = await this.#mutex.acquire();
    try {
      if (this.#closed) return;
      this.#closed = true;
      if (!this.readOnly) this.#db.pragma('optimize');
      this.#db.close();
    } finally {
      release();
    }
  }

  #snapshot(checkpoints: readonly AuditCheckpoint[], release: Release): SqliteAuditSnapshot {
    const db = this.#db;
    const rows = this.#statement(`SELECT ${AUDIT_COLUMNS} FROM audit_entries ORDER BY seq`).iterate() as IterableIterator<AuditEntryRow>;
    let open = true;
    let iterated = false;
    const close = (): void => {
      if (!open) return;
      open = false;
      try {
        rows.return?.();
        if (db.inTransaction) db.exec('COMMIT');
      } finally {
        release();
      }
    };
    function* entries(): Generator<AuditEntry> {
      if (iterated) throw new Error('the entries of an audit snapshot can be iterated once');
      iterated = true;
      for (const row of rows) yield auditEntryFromRow(row);
    }
    return { checkpoints, entries: { [Symbol.iterator]: entries }, close };
  }

  /** Runs queued transactions in batches until the queue is empty. */
  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        // Let pending I/O callbacks (incoming requests) queue their transactions first, so that
        // one commit, one fsync, covers them all.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const release = await this.#mutex.acquire();
        const batch = this.#queue.splice(0, MAX_BATCH);
        try {
          await this.#runBatch(batch);
        } catch (error) {
          // #runBatch settles every caller itself; this only guards against a bug leaving one hanging.
          for (const pending of batch) pending.reject(toBrokerError(error, 'store.error'));
        } finally {
          release();
        }
      }
    } finally {
      this.#draining = null;
    }
  }

  /**
   * One SQLite transaction for a batch: each piece of work in its own SAVEPOINT (undone alone
   * if it throws), then one COMMIT. Every caller hears of its outcome only after the COMMIT.
   */
  async #runBatch(batch: readonly Pending[]): Promise<void> {
    const db = this.#db;
    const done: { pending: Pending; ok: boolean; value: unknown }[] = [];
    const settle = (): void => {
      for (const { pending, ok, value } of done.splice(0)) {
        if (ok) pending.resolve(value);
        else pending.reject(value);
      }
    };
    /** SQLite undid the whole transaction on its own (I/O error, full disk): nothing so far stands. */
    const lost = (): void => {
      for (const item of done) {
        if (item.ok) {
          item.ok = false;
          item.value = new BrokerError('unavailable', {
            code: 'store.rolled_back',
            publicMessage: 'the store could not commit the change; retry',
            logMessage: 'store: the transaction was rolled back by SQLite after an error in the same batch',
          });
        }
      }
      settle();
    };
    let open = false;
    for (const pending of batch) {
      if (!open) {
        try {
          db.exec(this.readOnly ? 'BEGIN' : 'BEGIN IMMEDIATE');
          open = true;
        } catch (error) {
          pending.reject(mapSqliteError(error, { operation: 'begin transaction' }));
          continue;
        }
      }
      const tx = new SqliteTransaction((sql) => this.#statement(sql));
      let outcome: { ok: boolean; value: unknown };
      try {
        db.exec('SAVEPOINT work');
        const value = await this.#inTransaction.run(true, () => pending.work(tx));
        tx.end();
        db.exec('RELEASE work');
        outcome = { ok: true, value };
      } catch (error) {
        tx.end();
        if (db.inTransaction) {
          try {
            db.exec('ROLLBACK TO work');
            db.exec('RELEASE work');
          } catch {
            // Handled below: the transaction is gone.
          }
        }
        // The caller's own error, unchanged: the store maps only what SQLite throws.
        outcome = { ok: false, value: isSqliteError(error) ? mapSqliteError(error, { operation: 'transaction' }) : error };
      }
      done.push({ pending, ...outcome });
      if (!db.inTransaction) {
        lost();
        open = false;
      }
    }
    if (!open) return;
    try {
      db.exec('COMMIT');
    } catch (error) {
      this.#rollback();
      const failure = mapSqliteError(error, { operation: 'commit transaction' });
      for (const item of done) {
        if (item.ok) {
          item.ok = false;
          item.value = failure;
        }
      }
    }
    settle();
  }

  #rollback(): void {
    if (!this.#db.inTransaction) return;
    try {
      this.#db.exec('ROLLBACK');
    } catch {
      // SQLite already rolled back on its own (e.g. after an I/O error); nothing is left to undo.
    }
  }

  #statement(sql: string): Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #checkOpen(): void {
    if (this.#closed || this.#closing) throw this.#closedError();
  }

  #closedError(): BrokerError {
    return new BrokerError('unavailable', { code: 'store.closed', publicMessage: 'the store is closed', logMessage: `store ${this.path} is closed` });
  }

  #tableNames(): string[] {
    return this.#db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all() as string[];
  }

  /** Refuses a database that is not credbroker's, or whose schema is newer or not ours. */
  #appliedMigrations(migrations: readonly SqliteMigration[]): { version: number; name: string }[] {
    const applied = this.#db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as { version: number; name: string }[];
    if (applied.length > 0 && this.#db.pragma('application_id', { simple: true }) !== SQLITE_APPLICATION_ID) {
      throw notCredbroker(this.path);
    }
    const newest = applied.at(-1)?.version ?? 0;
    if (newest > migrations.length) {
      throw new BrokerError('conflict', {
        code: 'store.schema_too_new',
        publicMessage: `the database ${this.path} has schema version ${newest}, newer than this credbroker knows (${migrations.length}): run a credbroker at least as new as the one that wrote it`,
      });
    }
    for (const [index, row] of applied.entries()) {
      const known = migrations[row.version - 1];
      if (row.version !== index + 1 || known?.name !== row.name) {
        throw new BrokerError('conflict', {
          code: 'store.schema_mismatch',
          publicMessage: `the database ${this.path} records migration ${row.version} "${row.name}", which this credbroker does not have: it was written by other code`,
        });
      }
    }
    return applied;
  }

  #migrate(migrations: readonly SqliteMigration[], clock: Clock): void {
    const db = this.#db;
    db.exec('BEGIN IMMEDIATE');
    try {
      const tables = this.#tableNames();
      if (!tables.includes('schema_migrations')) {
        if (tables.length > 0) throw notCredbroker(this.path);
        db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
      }
      const applied = this.#appliedMigrations(migrations);
      const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
      for (const migration of migrations.slice(applied.length)) {
        db.exec(migration.sql);
        record.run(migration.version, migration.name, clock.now().getTime());
      }
      db.exec('COMMIT');
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }

  #checkSchema(migrations: readonly SqliteMigration[]): void {
    if (!this.#tableNames().includes('schema_migrations')) throw notCredbroker(this.path);
    const applied = this.#appliedMigrations(migrations);
    if (applied.length < migrations.length) {
      throw new BrokerError('conflict', {
        code: 'store.schema_too_old',
        publicMessage: `the database ${this.path} has schema version ${applied.length}, older than this credbroker's (${migrations.length}): open it once read-write (start the broker) to migrate it`,
      });
    }
  }
}

function notCredbroker(path: string): BrokerError {
  return new BrokerError('conflict', {
    code: 'store.not_credbroker',
    publicMessage: `the database ${path} was not made by credbroker: refusing to use it`,
  });
}

/** The work of one transaction. Every method runs synchronously and returns a settled promise. */
class SqliteTransaction implements StoreTransaction {
  readonly #statement: (sql: string) => Statement;
  #active = true;

  constructor(statement: (sql: string) => Statement) {
    this.#statement = statement;
  }

  /** Later calls fail: a transaction object must not outlive its transaction. */
  end(): void {
    this.#active = false;
  }

  insertCertificate(record: CertificateRecord): Promise<void> {
    return this.#do(
      {
        operation: `insert certificate ${record.serial}`,
        uniqueCode: 'store.certificate_exists',
        uniqueMessage: `a certificate with serial ${record.serial} (or the same DER) is already recorded`,
      },
      () => {
        checkCertificateRecord(record);
        this.#statement(`INSERT INTO certificates (${CERTIFICATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
          record.serial,
          record.spiffeId,
          record.profile,
          timeMs(record.notBefore, 'notBefore'),
          timeMs(record.notAfter, 'notAfter'),
          timeMs(record.issuedAt, 'issuedAt'),
          record.sha256,
          record.spkiSha256,
          record.issuerSerial,
          record.renewedFrom,
          Buffer.from(record.der.buffer, record.der.byteOffset, record.der.byteLength),
          record.revokedAt === null ? null : timeMs(record.revokedAt, 'revokedAt'),
          record.revocationReason,
        );
      },
    );
  }

  getCertificate(serial: string): Promise<CertificateRecord | null> {
    return this.#do({ operation: `get certificate ${serial}` }, () => {
      const row = this.#statement(`SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE serial = ?`).get(serial) as CertificateRow | undefined;
      return row === undefined ? null : certificateFromRow(row);
    });
  }

  revokeCertificate(serial: string, revokedAt: Date, reason: StoredRevocationReason): Promise<boolean> {
    return this.#do({ operation: `revoke certificate ${serial}` }, () => {
      checkSerial(serial);
      checkRevocationReason(reason);
      const result = this.#statement('UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ? AND revoked_at IS NULL').run(
        timeMs(revokedAt, 'revokedAt'),
        reason,
        serial,
      );
      return result.changes === 1;
    });
  }

  listCertificates(filter: CertificateFilter, pageSize: number, pageToken: string): Promise<Page<CertificateRecord>> {
    return this.#do({ operation: 'list certificates' }, () => {
      const limit = effectivePageSize(pageSize);
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.spiffeId !== undefined) {
        if (typeof filter.spiffeId !== 'string' || filter.spiffeId === '') throw filterError('spiffeId must be a SPIFFE ID or a prefix ending in /');
        if (filter.spiffeId.endsWith('/')) {
          // Every string that starts with "…/" sorts at or after it and before "…0" ('0' follows
          // '/' in UTF-8): an index range instead of LIKE, with no wildcard to escape.
          where.push('spiffe_id >= ? AND spiffe_id < ?');
          params.push(filter.spiffeId, `${filter.spiffeId.slice(0, -1)}0`);
        } else {
          where.push('spiffe_id = ?');
          params.push(filter.spiffeId);
        }
      }
      if (filter.profile !== undefined) {
        if (!CERTIFICATE_PROFILE_NAMES.includes(filter.profile)) throw filterError(`unknown profile "${filter.profile}"`);
        where.push('profile = ?');
        params.push(filter.profile);
      }
      let validAtMs: number | null = null;
      if (filter.validAt !== undefined) {
        validAtMs = filterTime(filter.validAt, 'validAt');
        // RFC 5280 §4.1.2.5: the validity period includes notBefore and notAfter.
        where.push('not_before <= ? AND not_after >= ? AND (revoked_at IS NULL OR revoked_at > ?)');
        params.push(validAtMs, validAtMs, validAtMs);
      }
      if (filter.revoked !== undefined) {
        if (typeof filter.revoked !== 'boolean') throw filterError('revoked must be true or false');
        where.push(filter.revoked ? 'revoked_at IS NOT NULL' : 'revoked_at IS NULL');
      }
      const fingerprint = filterFingerprint(['certificates', filter.spiffeId ?? null, filter.profile ?? null, validAtMs, filter.revoked ?? null]);
      const after = decodePageToken(pageToken, fingerprint, ['number', 'string']);
      if (after !== null) {
        where.push('(issued_at < ? OR (issued_at = ? AND serial < ?))');
        params.push(after[0], after[0], after[1]);
      }
      const sql = `SELECT ${CERTIFICATE_COLUMNS} FROM certificates${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY issued_at DESC, serial DESC LIMIT ?`;
      const rows = this.#statement(sql).all(...params, limit + 1) as CertificateRow[];
      const items = rows.slice(0, limit).map(certificateFromRow);
      const last = items.at(-1);
      const nextPageToken = rows.length > limit && last !== undefined ? encodePageToken([last.issuedAt.getTime(), last.serial], fingerprint) : '';
      return Object.freeze({ items: Object.freeze(items), nextPageToken });
    });
  }

  listRevokedUnexpired(at: Date): Promise<readonly CertificateRecord[]> {
    return this.#do({ operation: 'list revoked certificates' }, () => {
      const rows = this.#statement(
        `SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE revoked_at IS NOT NULL AND not_after >= ? ORDER BY not_after, serial`,
      ).all(timeMs(at, 'at')) as CertificateRow[];
      return Object.freeze(rows.map(certificateFromRow));
    });
  }

  insertJoinToken(record: JoinTokenRecord): Promise<void> {
    return this.#do(
      { operation: `insert join token ${record.id}`, uniqueCode: 'store.join_token_exists', uniqueMessage: `a join token with id ${record.id} (or the same hash) already exists` },
      () => {
        checkJoinTokenRecord(record);
        this.#statement(`INSERT INTO join_tokens (${JOIN_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(
          record.id,
          record.hash,
          record.spiffeId,
          record.createdBy,
          timeMs(record.createdAt, 'createdAt'),
          timeMs(record.expiresAt, 'expiresAt'),
          record.usedAt === null ? null : timeMs(record.usedAt, 'usedAt'),
          record.usedForSerial,
        );
      },
    );
  }

  getJoinTokenByHash(hash: string): Promise<JoinTokenRecord | null> {
    return this.#do({ operation: 'get join token' }, () => {
      const row = this.#statement(`SELECT ${JOIN_TOKEN_COLUMNS} FROM join_tokens WHERE hash = ?`).get(hash) as JoinTokenRow | undefined;
      return row === undefined ? null : joinTokenFromRow(row);
    });
  }

  redeemJoinToken(id: string, usedAt: Date, serial: string): Promise<boolean> {
    return this.#do({ operation: `redeem join token ${id}` }, () => {
      checkSerial(serial);
      // One statement: the row changes only if it is still unused, so exactly one caller wins.
      const result = this.#statement('UPDATE join_tokens SET used_at = ?, used_for_serial = ? WHERE id = ? AND used_at IS NULL').run(
        timeMs(usedAt, 'usedAt'),
        serial,
        id,
      );
      return result.changes === 1;
    });
  }

  countOutstandingJoinTokens(at: Date): Promise<number> {
    return this.#do({ operation: 'count join tokens' }, () =>
      Number(this.#statement('SELECT count(*) FROM join_tokens WHERE used_at IS NULL AND expires_at > ?').pluck().get(timeMs(at, 'at'))),
    );
  }

  insertAuditEntry(entry: AuditEntry): Promise<void> {
    return this.#do({ operation: `insert audit entry ${entry.seq}`, uniqueCode: 'store.audit_seq', uniqueMessage: `audit entry ${entry.seq} already exists` }, () => {
      checkAuditEntry(entry);
      const head = this.#statement('SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
      const headSeq = head?.seq ?? 0;
      if (entry.seq <= headSeq) {
        throw new BrokerError('conflict', { code: 'store.audit_seq', publicMessage: `audit entry ${entry.seq} already exists`, retryable: true });
      }
      if (entry.seq !== headSeq + 1) {
        throw new BrokerError('internal', {
          code: 'store.audit_gap',
          publicMessage: 'internal error',
          logMessage: `store: audit entry ${entry.seq} would leave a gap after ${headSeq}`,
        });
      }
      if (entry.prevHash !== (head?.hash ?? AUDIT_GENESIS_HASH)) {
        throw new BrokerError('conflict', {
          code: 'store.audit_chain',
          publicMessage: 'the audit entry does not chain to the head of the log',
          logMessage: `store: audit entry ${entry.seq} has prevHash ${entry.prevHash}, the head is ${head?.hash ?? AUDIT_GENESIS_HASH}`,
          retryable: true,
        });
      }
      this.#statement(`INSERT INTO audit_entries (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
        entry.seq,
        timeMs(entry.time, 'time'),
        entry.requestId,
        entry.actor,
        entry.action,
        entry.outcome,
        entry.subject,
        entry.reason,
        detailsJson(entry.details),
        entry.prevHash,
        entry.hash,
      );
    });
  }

  queryAudit(filter: AuditFilter, pageSize: number, pageToken: string): Promise<Page<AuditEntry>> {
    return this.#do({ operation: 'query audit' }, () => {
      const limit = effectivePageSize(pageSize);
      const where: string[] = [];
      const params: unknown[] = [];
      for (const [field, column] of [
        ['actor', 'actor'],
        ['action', 'action'],
        ['subject', 'subject'],
      ] as const) {
        const value = filter[field];
        if (value === undefined) continue;
        if (typeof value !== 'string') throw filterError(`${field} must be a string`);
        where.push(`${column} = ?`);
        params.push(value);
      }
      if (filter.outcome !== undefined) {
        if (!AUDIT_OUTCOMES.includes(filter.outcome)) throw filterError(`unknown outcome "${filter.outcome}"`);
        where.push('outcome = ?');
        params.push(filter.outcome);
      }
      const sinceMs = filter.since === undefined ? null : filterTime(filter.since, 'since');
      const untilMs = filter.until === undefined ? null : filterTime(filter.until, 'until');
      if (sinceMs !== null) {
        where.push('time >= ?');
        params.push(sinceMs);
      }
      if (untilMs !== null) {
        where.push('time < ?');
        params.push(untilMs);
      }
      const fingerprint = filterFingerprint(['audit', filter.actor ?? null, filter.action ?? null, filter.outcome ?? null, sinceMs, untilMs, filter.subject ?? null]);
      const after = decodePageToken(pageToken, fingerprint, ['number']);
      if (after !== null) {
        where.push('seq < ?');
        params.push(after[0]);
      }
      const sql = `SELECT ${AUDIT_COLUMNS} FROM audit_entries${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
      const rows = this.#statement(sql).all(...params, limit + 1) as AuditEntryRow[];
      const items = rows.slice(0, limit).map(auditEntryFromRow);
      const last = items.at(-1);
      const nextPageToken = rows.length > limit && last !== undefined ? encodePageToken([last.seq], fingerprint) : '';
      return Object.freeze({ items: Object.freeze(items), nextPageToken });
    });
  }

  lastAuditEntry(): Promise<AuditEntry | null> {
    return this.#do({ operation: 'read the last audit entry' }, () => {
      const row = this.#statement(`SELECT ${AUDIT_COLUMNS} FROM audit_entries ORDER BY seq DESC LIMIT 1`).get() as AuditEntryRow | undefined;
      return row === undefined ? null : auditEntryFromRow(row);
    });
  }

  insertAuditCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    const conflict = (why: string): BrokerError =>
      new BrokerError('conflict', { code: 'store.audit_checkpoint', publicMessage: `audit checkpoint at seq ${checkpoint.seq}: ${why}` });
    return this.#do(
      { operation: `insert audit checkpoint ${checkpoint.seq}`, uniqueCode: 'store.audit_checkpoint', uniqueMessage: `an audit checkpoint at seq ${checkpoint.seq} already exists` },
      () => {
        checkAuditCheckpoint(checkpoint);
        const hash = this.#statement('SELECT hash FROM audit_entries WHERE seq = ?').pluck().get(checkpoint.seq) as string | undefined;
        if (hash === undefined) throw conflict('there is no such entry');
        if (hash !== checkpoint.hash) throw conflict('its hash is not the hash of that entry');
        const lastSeq = Number(this.#statement('SELECT coalesce(max(seq), 0) FROM audit_checkpoints').pluck().get());
        if (checkpoint.seq <= lastSeq) throw conflict(`the last checkpoint is already at seq ${lastSeq}`);
        this.#statement(`INSERT INTO audit_checkpoints (${CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`).run(
          checkpoint.seq,
          checkpoint.hash,
          timeMs(checkpoint.time, 'time'),
          checkpoint.algorithm,
          checkpoint.keySpkiSha256,
          checkpoint.signature,
        );
      },
    );
  }

  lastAuditCheckpoint(): Promise<AuditCheckpoint | null> {
    return this.#do({ operation: 'read the last audit checkpoint' }, () => {
      const row = this.#statement(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`).get() as AuditCheckpointRow | undefined;
      return row === undefined ? null : checkpointFromRow(row);
    });
  }

  nextCounter(name: string): Promise<bigint> {
    return this.#do({ operation: `next counter ${name}` }, () => {
      checkCounterName(name);
      const value = this.#statement('INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value')
        .pluck()
        .safeIntegers(true)
        .get(name) as bigint;
      return value;
    });
  }

  insertRotation(record: RotationRecord): Promise<void> {
    return this.#do({ operation: `insert rotation ${record.id}`, uniqueCode: 'store.rotation_exists', uniqueMessage: `a rotation with id ${record.id} already exists` }, () => {
      checkRotationRecord(record);
      this.#statement(`INSERT INTO rotations (${ROTATION_COLUMNS}) VALUES (?, ?, ?, ?, ?)`).run(
        record.id,
        record.selector,
        record.reason,
        record.requestedBy,
        timeMs(record.requestedAt, 'requestedAt'),
      );
    });
  }

  getRotation(id: string): Promise<RotationRecord | null> {
    return this.#do({ operation: `get rotation ${id}` }, () => {
      const row = this.#statement(`SELECT ${ROTATION_COLUMNS} FROM rotations WHERE id = ?`).get(id) as RotationRow | undefined;
      return row === undefined ? null : rotationFromRow(row);
    });
  }

  insertRotationTarget(target: RotationTargetRecord): Promise<void> {
    return this.#do(
      {
        operation: `insert rotation target ${target.rotationId}/${target.serial}`,
        uniqueCode: 'store.rotation_target_exists',
        uniqueMessage: `rotation ${target.rotationId} already targets serial ${target.serial}`,
      },
      () => {
        checkRotationTargetRecord(target);
        if (this.#statement('SELECT 1 FROM rotations WHERE id = ?').get(target.rotationId) === undefined) {
          throw new BrokerError('internal', { code: 'store.invalid_record', publicMessage: 'internal error', logMessage: `store: refusing a record: rotation ${target.rotationId} does not exist` });
        }
        this.#statement(`INSERT INTO rotation_targets (${ROTATION_TARGET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(
          target.rotationId,
          target.serial,
          target.spiffeId,
          timeMs(target.notAfter, 'notAfter'),
          target.connected ? 1 : 0,
          target.status,
          target.newSerial,
          target.finishedAt === null ? null : timeMs(target.finishedAt, 'finishedAt'),
        );
      },
    );
  }

  listRotationTargets(rotationId: string): Promise<readonly RotationTargetRecord[]> {
    return this.#do({ operation: `list rotation targets ${rotationId}` }, () => {
      const rows = this.#statement(`SELECT ${ROTATION_TARGET_COLUMNS} FROM rotation_targets WHERE rotation_id = ? ORDER BY serial`).all(rotationId) as RotationTargetRow[];
      return Object.freeze(rows.map(rotationTargetFromRow));
    });
  }

  pendingRotationTargets(serial: string): Promise<readonly RotationTargetRecord[]> {
    return this.#do({ operation: `pending rotation targets of ${serial}` }, () => {
      const rows = this.#statement(`SELECT ${ROTATION_TARGET_COLUMNS} FROM rotation_targets WHERE serial = ? AND status = 'pending' ORDER BY rotation_id`).all(serial) as RotationTargetRow[];
      return Object.freeze(rows.map(rotationTargetFromRow));
    });
  }

  finishRotationTarget(rotationId: string, serial: string, status: 'rotated' | 'revoked', newSerial: string | null, at: Date): Promise<boolean> {
    return this.#do({ operation: `finish rotation target ${rotationId}/${serial}` }, () => {
      const given: string = status;
      if (given !== 'rotated' && given !== 'revoked') throw new BrokerError('internal', { code: 'store.invalid_record', publicMessage: 'internal error', logMessage: `store: refusing a record: status "${given}"` });
      if ((status === 'rotated') !== (newSerial !== null)) throw new BrokerError('internal', { code: 'store.invalid_record', publicMessage: 'internal error', logMessage: 'store: refusing a record: newSerial must be set exactly for rotated' });
      if (newSerial !== null) checkSerial(newSerial, 'newSerial');
      const result = this.#statement("UPDATE rotation_targets SET status = ?, new_serial = ?, finished_at = ? WHERE rotation_id = ? AND serial = ? AND status = 'pending'").run(
        status,
        newSerial,
        timeMs(at, 'at'),
        rotationId,
        serial,
      );
      return result.changes === 1;
    });
  }

  /** Runs `body` synchronously and settles a promise with its result or its mapped error. */
  #do<T>(context: SqliteErrorContext, body: () => T): Promise<T> {
    try {
      if (!this.#active) {
        throw new BrokerError('internal', {
          code: 'store.tx_ended',
          publicMessage: 'internal error',
          logMessage: `store: ${context.operation} on a transaction that has ended`,
        });
      }
      return Promise.resolve(body());
    } catch (error) {
      return Promise.reject(mapSqliteError(error, context));
    }
  }
}
