/**
 * The shared store: PostgreSQL through `pg`, for several brokers behind a load balancer.
 *
 * ## Isolation: one writer at a time, across every broker
 *
 * Every transaction runs at READ COMMITTED and, as its first statement, takes one
 * transaction-scoped advisory lock (`pg_advisory_xact_lock`, {@link WRITE_LOCK}) that PostgreSQL
 * releases at COMMIT or ROLLBACK. So credbroker transactions never overlap, whichever broker runs
 * them: each sees everything committed before it (READ COMMITTED takes a fresh snapshot per
 * statement, and the lock is granted only after the previous holder's commit is visible), and
 * none can deadlock or fail to serialise against another. The audit log makes this the natural
 * shape: every decision appends to the one hash chain, whose head is by definition a single point
 * of order, and the lock held from BEGIN (rather than taken at the audit append) means no two
 * transactions can ever take their locks in opposite orders.
 *
 * The row-level guards stay as a second line, for writers that are not credbroker and against
 * bugs: a join token is redeemed by `UPDATE … WHERE used_at IS NULL` (a concurrent updater waits
 * and then sees the row used), serials are a PRIMARY KEY, counters an upsert on a locked row,
 * revocations and rotation targets change only from their first state.
 *
 * Throughput comes from group commit, as in the SQLite store: each broker runs its queued
 * transactions in batches (at most 64): one PostgreSQL transaction, each caller's work inside its
 * own SAVEPOINT (undone alone if it throws), one COMMIT (one WAL flush) for the batch. Callers see
 * exactly one transaction each, in call order, settled after the COMMIT. Brokers take turns batch
 * by batch on the lock.
 *
 * ## Failures
 *
 * A connection that fails before any work of a batch ran (a pooled connection the server closed,
 * a restart) is replaced and the batch started again, up to {@link CONNECT_ATTEMPTS} times; after
 * that, and for a connection lost while works ran or during the COMMIT, every caller of the batch
 * gets unavailable `store.unavailable` (retry; a commit whose answer was lost may have happened, so
 * callers' retries meet the usual conflict rules). Waiting for the lock longer than
 * `lockTimeoutMs` (another broker stuck inside a transaction) fails with unavailable `store.busy`;
 * the server ends a session idle inside a transaction after `idleInTransactionTimeoutMs`, so a
 * broker that hangs cannot hold the lock for ever. Serialization failures and deadlocks cannot
 * happen between credbroker transactions; from a foreign writer they are `store.busy` too.
 * A store error inside a work aborts that work's transaction (PostgreSQL refuses further
 * statements until ROLLBACK TO SAVEPOINT): rethrow it, as every caller does.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { BrokerError, silentLogger, systemClock, toBrokerError, type Clock, type Logger, type Secret } from '../core/index.js';
import type { AuditCheckpoint, AuditEntry } from './audit-records.js';
import { decodePageToken, effectivePageSize, encodePageToken, filterFingerprint } from './pagination.js';
import { isConnectionError, mapPostgresError, type PostgresErrorContext } from './postgres-errors.js';
import { POSTGRES_MIGRATIONS, type PostgresMigration } from './postgres-migrations.js';
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

/** Default connections per broker (one runs the batches; the rest serve audit snapshots and reconnects). */
export const DEFAULT_POSTGRES_POOL_SIZE = 4;
/** Default wait for the write lock held by another broker, in ms. */
export const DEFAULT_POSTGRES_LOCK_TIMEOUT_MS = 5_000;
/** Default wait for a new connection, in ms. */
export const DEFAULT_POSTGRES_CONNECT_TIMEOUT_MS = 5_000;
/** Default: the server ends a session idle inside a transaction this long, in ms. */
export const DEFAULT_POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_MS = 30_000;
/** Attempts to open a batch's transaction when connections fail before any work ran. */
export const CONNECT_ATTEMPTS = 3;

/** Advisory lock keys (two int4: "crbk" and a number) of this database. */
const LOCK_SPACE = 0x6372626b;
/** Held by every transaction from BEGIN to COMMIT: one writer at a time across all brokers. */
const WRITE_LOCK = `${LOCK_SPACE}, 1`;
/** Held while migrating, so brokers starting together migrate once. */
const MIGRATE_LOCK = `${LOCK_SPACE}, 2`;

/** Most transactions committed together: bounds the wait of the first one in a batch. */
const MAX_BATCH = 64;

/** TLS to the server (pg's `ssl`): the server's certificate is always verified. */
export interface PostgresTls {
  /** Trusted CA certificates, PEM; absent: the system's. */
  readonly ca?: string;
  /** Name to verify in the server's certificate; default: the host. */
  readonly servername?: string;
}

/** Where the database is and who logs in. */
export interface PostgresConnection {
  /** Host name or IP address, or the folder of the server's unix socket (an absolute path). */
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** The user's password, read from its secret source; null for `trust` or `peer` logins. */
  readonly password: Secret | null;
  /** Absent: no TLS (a unix socket, or a private network). */
  readonly tls?: PostgresTls;
  /** Connections this broker opens at most (default {@link DEFAULT_POSTGRES_POOL_SIZE}, ≥ 2). */
  readonly poolSize?: number;
}

/** Options of {@link PostgresStore.open}. */
export interface PostgresStoreOptions {
  /** Clock for `credbroker_schema.applied_at` (default: the system clock). */
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Wait for the write lock, in ms (default 5,000); beyond: unavailable `store.busy`. */
  readonly lockTimeoutMs?: number;
  /** Wait for a new connection, in ms (default 5,000). */
  readonly connectTimeoutMs?: number;
  /** The server ends a session idle inside a transaction this long, in ms (default 30,000). */
  readonly idleInTransactionTimeoutMs?: number;
  /**
   * Use an existing, up-to-date schema without migrating it, in read-only sessions (offline
   * verification, export): every write fails (internal `store.error`, SQLSTATE 25006).
   */
  readonly readOnly?: boolean;
  /** Test seam: the migrations to apply (default {@link POSTGRES_MIGRATIONS}). */
  readonly migrations?: readonly PostgresMigration[];
}

/** The audit log as of one moment (a REPEATABLE READ snapshot), for offline verification. */
export interface PostgresAuditSnapshot {
  /** Every checkpoint, in seq order. */
  readonly checkpoints: readonly AuditCheckpoint[];
  /** Every entry, in seq order (read into memory: about 0.5 kB per entry). */
  readonly entries: readonly AuditEntry[];
}

/** A transaction waiting for its batch. */
interface Pending {
  readonly work: (tx: StoreTransaction) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

type Query = <R extends object>(text: string, values?: readonly unknown[]) => Promise<pg.QueryResult<R>>;


/** A {@link Store} in a PostgreSQL database that several brokers share. */
export class PostgresStore implements Store {
  /** `postgresql://user@host:port/database`, for logs (never the password). */
  readonly description: string;
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #queue: Pending[] = [];
  #draining: Promise<void> | null = null;
  #closing = false;
  #closed = false;
  /** Marks the async context of a running transaction, to refuse nested ones (a deadlock). */
  readonly #inTransaction = new AsyncLocalStorage<true>();

  private constructor(pool: pg.Pool, description: string, logger: Logger) {
    this.#pool = pool;
    this.description = description;
    this.#logger = logger;
  }

  /**
   * Connects to the database and brings its schema up to date (once, under an advisory lock,
   * when several brokers start together).
   * @throws BrokerError unavailable `store.open` when the server cannot be reached or refuses the
   *   login (host, database, user and the server's reason named; never the password); conflict
   *   `store.not_credbroker` for a schema another program made; conflict `store.schema_too_new`
   *   for a schema newer than this code; conflict `store.schema_mismatch` when a recorded
   *   migration differs from this code's; conflict `store.schema_too_old` when opening an
   *   unmigrated database read-only
   */
  static async open(connection: PostgresConnection, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const logger = options.logger ?? silentLogger;
    const description = `postgresql://${connection.user}@${connection.host.startsWith('/') ? `[${connection.host}]` : connection.host}:${connection.port}/${connection.database}`;
    const poolSize = connection.poolSize ?? DEFAULT_POSTGRES_POOL_SIZE;
    if (!Number.isSafeInteger(poolSize) || poolSize < 2) throw new RangeError(`poolSize must be an integer >= 2, got ${String(poolSize)}`);
    const password = connection.password;
    const pool = new pg.Pool({
      host: connection.host,
      port: connection.port,
      database: connection.database,
      user: connection.user,
      // A function: the value is revealed per login and never sits in the pool's options.
      ...(password === null ? {} : { password: () => password.reveal((value) => value) }),
      ...(connection.tls === undefined
        ? {}
        : { ssl: { rejectUnauthorized: true, ...(connection.tls.ca === undefined ? {} : { ca: connection.tls.ca }), ...(connection.tls.servername === undefined ? {} : { servername: connection.tls.servername }) } }),
      max: poolSize,
      application_name: 'credbroker',
      connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_POSTGRES_CONNECT_TIMEOUT_MS,
      lock_timeout: options.lockTimeoutMs ?? DEFAULT_POSTGRES_LOCK_TIMEOUT_MS,
      idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? DEFAULT_POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_MS,
      keepAlive: true,
      ...(options.readOnly === true ? { options: '-c default_transaction_read_only=on' } : {}),
    });
    // A connection that fails while idle or in use emits 'error': without a listener that would
    // end the process. The failing query (if any) rejects on its own and is mapped there.
    pool.on('error', (error) => {
      logger.warn({ store: description, error: error.message }, 'store: an idle PostgreSQL connection failed; it will be replaced');
    });
    pool.on('connect', (client) => {
      client.on('error', (error) => {
        logger.warn({ store: description, error: error.message }, 'store: a PostgreSQL connection failed');
      });
    });
    const store = new PostgresStore(pool, description, logger);
    try {
      await store.#migrate(options.migrations ?? POSTGRES_MIGRATIONS, options.clock ?? systemClock, options.readOnly === true);
    } catch (error) {
      await pool.end().catch(() => undefined);
      if (error instanceof BrokerError) throw error;
      throw new BrokerError('unavailable', {
        code: 'store.open',
        publicMessage: `cannot open the PostgreSQL store ${description}: ${error instanceof Error ? error.message : String(error)}`,
        cause: error,
      });
    }
    return store;
  }

  /**
   * Runs `work` in a transaction (see {@link Store.transaction}); with group commit and the write
   * lock: see the module comment. Resolves only once the COMMIT is acknowledged.
   * @throws what `work` throws, unchanged (its changes undone); BrokerError internal
   *   `store.nested_transaction` when called inside a transaction of this store; unavailable
   *   `store.closed`, `store.busy`, `store.unavailable` or `store.io` (retry)
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
   * Reads the whole audit log as of one moment (a REPEATABLE READ, READ ONLY transaction on its
   * own connection: brokers keep writing meanwhile), for offline verification and export.
   * @throws BrokerError unavailable `store.closed` after {@link close}; what the server answers, mapped
   */
  async readAuditSnapshot(): Promise<PostgresAuditSnapshot> {
    if (this.#closed || this.#closing) throw this.#closedError();
    let client: pg.PoolClient | null = null;
    try {
      client = await this.#pool.connect();
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const checkpoints = (await client.query<AuditCheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq`)).rows.map(checkpointFromRow);
      const entries: AuditEntry[] = [];
      for (;;) {
        const page = await client.query<AuditEntryRow>(`SELECT ${AUDIT_COLUMNS} FROM audit_entries WHERE seq > $1 ORDER BY seq LIMIT 10000`, [entries.at(-1)?.seq ?? 0]);
        entries.push(...page.rows.map(auditEntryFromRow));
        if (page.rows.length < 10_000) break;
      }
      await client.query('COMMIT');
      client.release();
      return { checkpoints: Object.freeze(checkpoints), entries: Object.freeze(entries) };
    } catch (error) {
      client?.release(error instanceof Error ? error : true);
      throw mapPostgresError(error, { operation: 'read the audit log' });
    }
  }

  /** Waits for queued transactions, then closes every connection; later calls fail with `store.closed`. */
  async close(): Promise<void> {
    this.#closing = true;
    while (this.#draining !== null) await this.#draining;
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  /** Runs queued transactions in batches until the queue is empty. */
  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        // Let pending I/O callbacks (incoming requests) queue their transactions first, so that
        // one commit covers them all.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const batch = this.#queue.splice(0, MAX_BATCH);
        try {
          await this.#runBatch(batch);
        } catch (error) {
          // #runBatch settles every caller itself; this only guards against a bug leaving one hanging.
          for (const pending of batch) pending.reject(toBrokerError(error, 'store.error'));
        }
      }
    } finally {
      this.#draining = null;
    }
  }

  /**
   * A connection in a fresh transaction holding the write lock, with the first savepoint set.
   * Connections that fail before any work ran are replaced (see the module comment).
   */
  async #begin(): Promise<pg.PoolClient> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient | null = null;
      try {
        client = await this.#pool.connect();
        await client.query(`BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(${WRITE_LOCK}); SAVEPOINT work`);
        return client;
      } catch (error) {
        if (client !== null) {
          if (isConnectionError(error)) client.release(true);
          else {
            await client.query('ROLLBACK').catch(() => undefined);
            client.release();
          }
        }
        if (!isConnectionError(error) || attempt >= CONNECT_ATTEMPTS) throw mapPostgresError(error, { operation: 'begin transaction' });
        this.#logger.warn({ store: this.description, attempt, error: error instanceof Error ? error.message : String(error) }, 'store: starting a transaction failed on the connection; retrying');
        await new Promise<void>((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  }

  /**
   * One PostgreSQL transaction for a batch: each piece of work in its own SAVEPOINT (undone alone
   * if it throws), then one COMMIT. Every caller hears of its outcome only after the COMMIT.
   */
  async #runBatch(batch: readonly Pending[]): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.#begin();
    } catch (error) {
      for (const pending of batch) pending.reject(error);
      return;
    }
    const done: { pending: Pending; ok: boolean; value: unknown }[] = [];
    let lost: BrokerError | null = null;
    const query: Query = (text, values) => client.query({ text, values: values === undefined ? [] : [...values], name: statementName(text) });
    for (const [index, pending] of batch.entries()) {
      if (lost !== null) {
        done.push({ pending, ok: false, value: lost });
        continue;
      }
      const tx = new PostgresTransaction(query);
      try {
        const value = await this.#inTransaction.run(true, () => pending.work(tx));
        tx.end();
        // The next work's savepoint, in the same round trip; the COMMIT ends the last one's.
        if (index < batch.length - 1) await client.query('RELEASE SAVEPOINT work; SAVEPOINT work');
        done.push({ pending, ok: true, value });
      } catch (error) {
        tx.end();
        try {
          await client.query('ROLLBACK TO SAVEPOINT work');
        } catch (rollbackError) {
          lost = mapPostgresError(rollbackError, { operation: 'roll back to savepoint' });
        }
        // The caller's own error, unchanged: the store maps only what PostgreSQL throws.
        done.push({ pending, ok: false, value: error instanceof pg.DatabaseError || isConnectionError(error) ? mapPostgresError(error, { operation: 'transaction' }) : error });
      }
    }
    if (lost === null) {
      try {
        await client.query('COMMIT');
      } catch (error) {
        lost = mapPostgresError(error, { operation: 'commit transaction' });
        await client.query('ROLLBACK').catch(() => undefined);
      }
    }
    client.release(lost !== null && lost.code === 'store.unavailable' ? true : undefined);
    for (const item of done) {
      if (lost !== null && item.ok) {
        item.ok = false;
        item.value = lost;
      }
      if (item.ok) item.pending.resolve(item.value);
      else item.pending.reject(item.value);
    }
  }

  async #migrate(migrations: readonly PostgresMigration[], clock: Clock, readOnly: boolean): Promise<void> {
    const client = await this.#pool.connect();
    let broken = false;
    try {
      await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${MIGRATE_LOCK})`);
      const exists = await client.query<{ name: string | null }>("SELECT to_regclass('credbroker_schema')::text AS name");
      if (exists.rows[0]?.name == null) {
        const tables = await client.query<{ count: string }>('SELECT count(*) AS count FROM pg_tables WHERE schemaname = current_schema()');
        if (readOnly || Number(tables.rows[0]?.count ?? 0) > 0) throw notCredbroker(this.description);
        await client.query('CREATE TABLE credbroker_schema (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)');
      }
      const applied = (await client.query<{ version: number; name: string }>('SELECT version, name FROM credbroker_schema ORDER BY version')).rows;
      const newest = applied.at(-1)?.version ?? 0;
      if (newest > migrations.length) {
        throw new BrokerError('conflict', {
          code: 'store.schema_too_new',
          publicMessage: `the database ${this.description} has schema version ${newest}, newer than this credbroker knows (${migrations.length}): run a credbroker at least as new as the one that wrote it`,
        });
      }
      for (const [index, row] of applied.entries()) {
        if (row.version !== index + 1 || migrations[row.version - 1]?.name !== row.name) {
          throw new BrokerError('conflict', {
            code: 'store.schema_mismatch',
            publicMessage: `the database ${this.description} records migration ${row.version} "${row.name}", which this credbroker does not have: it was written by other code`,
          });
        }
      }
      if (readOnly && applied.length < migrations.length) {
        throw new BrokerError('conflict', {
          code: 'store.schema_too_old',
          publicMessage: `the database ${this.description} has schema version ${applied.length}, older than this credbroker's (${migrations.length}): start a broker on it once to migrate it`,
        });
      }
      for (const migration of migrations.slice(applied.length)) {
        await client.query(migration.sql);
        await client.query('INSERT INTO credbroker_schema (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, clock.now().getTime()]);
        this.#logger.info({ store: this.description, version: migration.version, name: migration.name }, 'store: migrated');
      }
      await client.query('COMMIT');
    } catch (error) {
      broken = isConnectionError(error);
      if (!broken) await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release(broken ? true : undefined);
    }
  }

  #closedError(): BrokerError {
    return new BrokerError('unavailable', { code: 'store.closed', publicMessage: 'the store is closed', logMessage: `store ${this.description} is closed` });
  }
}

const statementNames = new Map<string, string>();

/** A prepared statement's name: the same text gets the same name on every connection. */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `cb_${createHash('sha256').update(text).digest('hex').slice(0, 20)}`;
    // Texts come from a fixed set of queries (filters combine a handful of clauses): bounded.
    if (statementNames.size < 10_000) statementNames.set(text, name);
  }
  return name;
}

function notCredbroker(description: string): BrokerError {
  return new BrokerError('conflict', {
    code: 'store.not_credbroker',
    publicMessage: `the database ${description} holds tables that credbroker did not make: refusing to use it (give credbroker a database, or a schema, of its own)`,
  });
}

/** Numbered placeholders for a query built piece by piece. */
class Params {
  readonly values: unknown[] = [];
  /** Adds a value; returns its placeholder (`$n`). */
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** The work of one transaction, on the batch's connection. */
class PostgresTransaction implements StoreTransaction {
  readonly #query: Query;
  #active = true;

  constructor(query: Query) {
    this.#query = query;
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
      async () => {
        checkCertificateRecord(record);
        await this.#query(`INSERT INTO certificates (${CERTIFICATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, [
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
        ]);
      },
    );
  }

  getCertificate(serial: string): Promise<CertificateRecord | null> {
    return this.#do({ operation: `get certificate ${serial}` }, async () => {
      const { rows } = await this.#query<CertificateRow>(`SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE serial = $1`, [serial]);
      return rows[0] === undefined ? null : certificateFromRow(rows[0]);
    });
  }

  revokeCertificate(serial: string, revokedAt: Date, reason: StoredRevocationReason): Promise<boolean> {
    return this.#do({ operation: `revoke certificate ${serial}` }, async () => {
      checkSerial(serial);
      checkRevocationReason(reason);
      const result = await this.#query('UPDATE certificates SET revoked_at = $1, revocation_reason = $2 WHERE serial = $3 AND revoked_at IS NULL', [
        timeMs(revokedAt, 'revokedAt'),
        reason,
        serial,
      ]);
      return result.rowCount === 1;
    });
  }

  listCertificates(filter: CertificateFilter, pageSize: number, pageToken: string): Promise<Page<CertificateRecord>> {
    return this.#do({ operation: 'list certificates' }, async () => {
      const limit = effectivePageSize(pageSize);
      const where: string[] = [];
      const params = new Params();
      if (filter.spiffeId !== undefined) {
        if (typeof filter.spiffeId !== 'string' || filter.spiffeId === '') throw filterError('spiffeId must be a SPIFFE ID or a prefix ending in /');
        if (filter.spiffeId.endsWith('/')) {
          // Every string that starts with "…/" sorts at or after it and before "…0" ('0' follows
          // '/' in byte order, the column's collation): an index range, no LIKE wildcard to escape.
          where.push(`spiffe_id >= ${params.add(filter.spiffeId)} AND spiffe_id < ${params.add(`${filter.spiffeId.slice(0, -1)}0`)}`);
        } else {
          where.push(`spiffe_id = ${params.add(filter.spiffeId)}`);
        }
      }
      if (filter.profile !== undefined) {
        if (!CERTIFICATE_PROFILE_NAMES.includes(filter.profile)) throw filterError(`unknown profile "${filter.profile}"`);
        where.push(`profile = ${params.add(filter.profile)}`);
      }
      let validAtMs: number | null = null;
      if (filter.validAt !== undefined) {
        validAtMs = filterTime(filter.validAt, 'validAt');
        // RFC 5280 §4.1.2.5: the validity period includes notBefore and notAfter.
        const p = params.add(validAtMs);
        where.push(`not_before <= ${p} AND not_after >= ${p} AND (revoked_at IS NULL OR revoked_at > ${p})`);
      }
      if (filter.revoked !== undefined) {
        if (typeof filter.revoked !== 'boolean') throw filterError('revoked must be true or false');
        where.push(filter.revoked ? 'revoked_at IS NOT NULL' : 'revoked_at IS NULL');
      }
      const fingerprint = filterFingerprint(['certificates', filter.spiffeId ?? null, filter.profile ?? null, validAtMs, filter.revoked ?? null]);
      const after = decodePageToken(pageToken, fingerprint, ['number', 'string']);
      if (after !== null) {
        const issued = params.add(after[0]);
        where.push(`(issued_at < ${issued} OR (issued_at = ${issued} AND serial < ${params.add(after[1])}))`);
      }
      const sql = `SELECT ${CERTIFICATE_COLUMNS} FROM certificates${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY issued_at DESC, serial DESC LIMIT ${params.add(limit + 1)}`;
      const { rows } = await this.#query<CertificateRow>(sql, params.values);
      const items = rows.slice(0, limit).map(certificateFromRow);
      const last = items.at(-1);
      const nextPageToken = rows.length > limit && last !== undefined ? encodePageToken([last.issuedAt.getTime(), last.serial], fingerprint) : '';
      return Object.freeze({ items: Object.freeze(items), nextPageToken });
    });
  }

  listRevokedUnexpired(at: Date): Promise<readonly CertificateRecord[]> {
    return this.#do({ operation: 'list revoked certificates' }, async () => {
      const { rows } = await this.#query<CertificateRow>(
        `SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE revoked_at IS NOT NULL AND not_after >= $1 ORDER BY not_after, serial`,
        [timeMs(at, 'at')],
      );
      return Object.freeze(rows.map(certificateFromRow));
    });
  }

  insertJoinToken(record: JoinTokenRecord): Promise<void> {
    return this.#do(
      { operation: `insert join token ${record.id}`, uniqueCode: 'store.join_token_exists', uniqueMessage: `a join token with id ${record.id} (or the same hash) already exists` },
      async () => {
        checkJoinTokenRecord(record);
        await this.#query(`INSERT INTO join_tokens (${JOIN_TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
          record.id,
          record.hash,
          record.spiffeId,
          record.createdBy,
          timeMs(record.createdAt, 'createdAt'),
          timeMs(record.expiresAt, 'expiresAt'),
          record.usedAt === null ? null : timeMs(record.usedAt, 'usedAt'),
          record.usedForSerial,
        ]);
      },
    );
  }

  getJoinTokenByHash(hash: string): Promise<JoinTokenRecord | null> {
    return this.#do({ operation: 'get join token' }, async () => {
      const { rows } = await this.#query<JoinTokenRow>(`SELECT ${JOIN_TOKEN_COLUMNS} FROM join_tokens WHERE hash = $1`, [hash]);
      return rows[0] === undefined ? null : joinTokenFromRow(rows[0]);
    });
  }

  redeemJoinToken(id: string, usedAt: Date, serial: string): Promise<boolean> {
    return this.#do({ operation: `redeem join token ${id}` }, async () => {
      checkSerial(serial);
      // One statement: the row changes only if it is still unused. A concurrent redeemer (a
      // foreign writer: credbroker's own are serialised by the write lock) waits for the row lock,
      // then re-checks the condition on the committed row and changes nothing.
      const result = await this.#query('UPDATE join_tokens SET used_at = $1, used_for_serial = $2 WHERE id = $3 AND used_at IS NULL', [timeMs(usedAt, 'usedAt'), serial, id]);
      return result.rowCount === 1;
    });
  }

  countOutstandingJoinTokens(at: Date): Promise<number> {
    return this.#do({ operation: 'count join tokens' }, async () => {
      const { rows } = await this.#query<{ count: string }>('SELECT count(*) AS count FROM join_tokens WHERE used_at IS NULL AND expires_at > $1', [timeMs(at, 'at')]);
      return Number(rows[0]?.count ?? 0);
    });
  }

  insertAuditEntry(entry: AuditEntry): Promise<void> {
    return this.#do({ operation: `insert audit entry ${entry.seq}`, uniqueCode: 'store.audit_seq', uniqueMessage: `audit entry ${entry.seq} already exists` }, async () => {
      checkAuditEntry(entry);
      const { rows } = await this.#query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1');
      const head = rows[0];
      const headSeq = head === undefined ? 0 : Number(head.seq);
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
      await this.#query(`INSERT INTO audit_entries (${AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, [
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
      ]);
    });
  }

  queryAudit(filter: AuditFilter, pageSize: number, pageToken: string): Promise<Page<AuditEntry>> {
    return this.#do({ operation: 'query audit' }, async () => {
      const limit = effectivePageSize(pageSize);
      const where: string[] = [];
      const params = new Params();
      for (const [field, column] of [
        ['actor', 'actor'],
        ['action', 'action'],
        ['subject', 'subject'],
      ] as const) {
        const value = filter[field];
        if (value === undefined) continue;
        if (typeof value !== 'string') throw filterError(`${field} must be a string`);
        where.push(`${column} = ${params.add(value)}`);
      }
      if (filter.outcome !== undefined) {
        if (!AUDIT_OUTCOMES.includes(filter.outcome)) throw filterError(`unknown outcome "${filter.outcome}"`);
        where.push(`outcome = ${params.add(filter.outcome)}`);
      }
      const sinceMs = filter.since === undefined ? null : filterTime(filter.since, 'since');
      const untilMs = filter.until === undefined ? null : filterTime(filter.until, 'until');
      if (sinceMs !== null) where.push(`time >= ${params.add(sinceMs)}`);
      if (untilMs !== null) where.push(`time < ${params.add(untilMs)}`);
      const fingerprint = filterFingerprint(['audit', filter.actor ?? null, filter.action ?? null, filter.outcome ?? null, sinceMs, untilMs, filter.subject ?? null]);
      const after = decodePageToken(pageToken, fingerprint, ['number']);
      if (after !== null) where.push(`seq < ${params.add(after[0])}`);
      const sql = `SELECT ${AUDIT_COLUMNS} FROM audit_entries${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ${params.add(limit + 1)}`;
      const { rows } = await this.#query<AuditEntryRow>(sql, params.values);
      const items = rows.slice(0, limit).map(auditEntryFromRow);
      const last = items.at(-1);
      const nextPageToken = rows.length > limit && last !== undefined ? encodePageToken([last.seq], fingerprint) : '';
      return Object.freeze({ items: Object.freeze(items), nextPageToken });
    });
  }

  lastAuditEntry(): Promise<AuditEntry | null> {
    return this.#do({ operation: 'read the last audit entry' }, async () => {
      const { rows } = await this.#query<AuditEntryRow>(`SELECT ${AUDIT_COLUMNS} FROM audit_entries ORDER BY seq DESC LIMIT 1`);
      return rows[0] === undefined ? null : auditEntryFromRow(rows[0]);
    });
  }

  insertAuditCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    const conflict = (why: string): BrokerError =>
      new BrokerError('conflict', { code: 'store.audit_checkpoint', publicMessage: `audit checkpoint at seq ${checkpoint.seq}: ${why}` });
    return this.#do(
      { operation: `insert audit checkpoint ${checkpoint.seq}`, uniqueCode: 'store.audit_checkpoint', uniqueMessage: `an audit checkpoint at seq ${checkpoint.seq} already exists` },
      async () => {
        checkAuditCheckpoint(checkpoint);
        const entry = (await this.#query<{ hash: string }>('SELECT hash FROM audit_entries WHERE seq = $1', [checkpoint.seq])).rows[0];
        if (entry === undefined) throw conflict('there is no such entry');
        if (entry.hash !== checkpoint.hash) throw conflict('its hash is not the hash of that entry');
        const last = (await this.#query<{ seq: string }>('SELECT coalesce(max(seq), 0) AS seq FROM audit_checkpoints')).rows[0];
        const lastSeq = Number(last?.seq ?? 0);
        if (checkpoint.seq <= lastSeq) throw conflict(`the last checkpoint is already at seq ${lastSeq}`);
        await this.#query(`INSERT INTO audit_checkpoints (${CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)`, [
          checkpoint.seq,
          checkpoint.hash,
          timeMs(checkpoint.time, 'time'),
          checkpoint.algorithm,
          checkpoint.keySpkiSha256,
          checkpoint.signature,
        ]);
      },
    );
  }

  lastAuditCheckpoint(): Promise<AuditCheckpoint | null> {
    return this.#do({ operation: 'read the last audit checkpoint' }, async () => {
      const { rows } = await this.#query<AuditCheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`);
      return rows[0] === undefined ? null : checkpointFromRow(rows[0]);
    });
  }

  nextCounter(name: string): Promise<bigint> {
    return this.#do({ operation: `next counter ${name}` }, async () => {
      checkCounterName(name);
      const { rows } = await this.#query<{ value: string }>(
        'INSERT INTO counters (name, value) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value',
        [name],
      );
      return BigInt(rows[0]?.value ?? '0');
    });
  }

  insertRotation(record: RotationRecord): Promise<void> {
    return this.#do({ operation: `insert rotation ${record.id}`, uniqueCode: 'store.rotation_exists', uniqueMessage: `a rotation with id ${record.id} already exists` }, async () => {
      checkRotationRecord(record);
      await this.#query(`INSERT INTO rotations (${ROTATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5)`, [
        record.id,
        record.selector,
        record.reason,
        record.requestedBy,
        timeMs(record.requestedAt, 'requestedAt'),
      ]);
    });
  }

  getRotation(id: string): Promise<RotationRecord | null> {
    return this.#do({ operation: `get rotation ${id}` }, async () => {
      const { rows } = await this.#query<RotationRow>(`SELECT ${ROTATION_COLUMNS} FROM rotations WHERE id = $1`, [id]);
      return rows[0] === undefined ? null : rotationFromRow(rows[0]);
    });
  }

  insertRotationTarget(target: RotationTargetRecord): Promise<void> {
    return this.#do(
      {
        operation: `insert rotation target ${target.rotationId}/${target.serial}`,
        uniqueCode: 'store.rotation_target_exists',
        uniqueMessage: `rotation ${target.rotationId} already targets serial ${target.serial}`,
      },
      async () => {
        checkRotationTargetRecord(target);
        if ((await this.#query('SELECT 1 FROM rotations WHERE id = $1', [target.rotationId])).rowCount !== 1) {
          throw new BrokerError('internal', { code: 'store.invalid_record', publicMessage: 'internal error', logMessage: `store: refusing a record: rotation ${target.rotationId} does not exist` });
        }
        await this.#query(`INSERT INTO rotation_targets (${ROTATION_TARGET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
          target.rotationId,
          target.serial,
          target.spiffeId,
          timeMs(target.notAfter, 'notAfter'),
          target.connected,
          target.status,
          target.newSerial,
          target.finishedAt === null ? null : timeMs(target.finishedAt, 'finishedAt'),
        ]);
      },
    );
  }

  listRotationTargets(rotationId: string): Promise<readonly RotationTargetRecord[]> {
    return this.#do({ operation: `list rotation targets ${rotationId}` }, async () => {
      const { rows } = await this.#query<RotationTargetRow>(`SELECT ${ROTATION_TARGET_COLUMNS} FROM rotation_targets WHERE rotation_id = $1 ORDER BY serial`, [rotationId]);
      return Object.freeze(rows.map(rotationTargetFromRow));
    });
  }

  pendingRotationTargets(serial: string): Promise<readonly RotationTargetRecord[]> {
    return this.#do({ operation: `pending rotation targets of ${serial}` }, async () => {
      const { rows } = await this.#query<RotationTargetRow>(`SELECT ${ROTATION_TARGET_COLUMNS} FROM rotation_targets WHERE serial = $1 AND status = 'pending' ORDER BY rotation_id`, [serial]);
      return Object.freeze(rows.map(rotationTargetFromRow));
    });
  }

  finishRotationTarget(rotationId: string, serial: string, status: 'rotated' | 'revoked', newSerial: string | null, at: Date): Promise<boolean> {
    return this.#do({ operation: `finish rotation target ${rotationId}/${serial}` }, async () => {
      const given: string = status;
      if (given !== 'rotated' && given !== 'revoked') throw new BrokerError('internal', { code: 'store.invalid_record', publicMessage: 'internal error', logMessage: `store: refusing a record: status "${given}"` });
      if ((status === 'rotated') !== (newSerial !== null)) throw new BrokerError('internal', { code: 'store.invalid_record', publicMessage: 'internal error', logMessage: 'store: refusing a record: newSerial must be set exactly for rotated' });
      if (newSerial !== null) checkSerial(newSerial, 'newSerial');
      const result = await this.#query("UPDATE rotation_targets SET status = $1, new_serial = $2, finished_at = $3 WHERE rotation_id = $4 AND serial = $5 AND status = 'pending'", [
        status,
        newSerial,
        timeMs(at, 'at'),
        rotationId,
        serial,
      ]);
      return result.rowCount === 1;
    });
  }

  /** Runs `body` if the transaction is still open; maps what PostgreSQL throws. */
  async #do<T>(context: PostgresErrorContext, body: () => Promise<T>): Promise<T> {
    if (!this.#active) {
      throw new BrokerError('internal', {
        code: 'store.tx_ended',
        publicMessage: 'internal error',
        logMessage: `store: ${context.operation} on a transaction that has ended`,
      });
    }
    try {
      return await body();
    } catch (error) {
      throw mapPostgresError(error, context);
    }
  }
}
