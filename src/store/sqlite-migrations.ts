/**
 * The SQLite schema as numbered migrations. {@link SqliteStore.open} applies the missing ones in
 * one transaction and records each in `schema_migrations`; it refuses a database whose schema is
 * newer than this code. Never edit a released migration: add the next one.
 *
 * Conventions: times are integer milliseconds since the epoch (UTC); hashes are lowercase hex;
 * tables are STRICT (a value of the wrong type is an error, not a silent conversion). The audit
 * tables refuse UPDATE and DELETE with triggers: append-only by construction, against bugs (a
 * person with write access to the file can drop a trigger; the hash chain and the signed
 * checkpoints are what detect that). Foreign keys are immediate, never deferred: a violation must
 * fail the statement inside its caller's savepoint, not the COMMIT of a whole batch.
 */

/** One schema step. */
export interface SqliteMigration {
  /** 1, 2, 3, … without gaps. */
  readonly version: number;
  /** Short name, recorded with the version; a mismatch on open means another code base wrote the file. */
  readonly name: string;
  /** SQL statements, run with `exec` inside the migration transaction. */
  readonly sql: string;
}

/** `PRAGMA application_id` of a credbroker database: the bytes "crbk". */
export const SQLITE_APPLICATION_ID = 0x6372626b;

/** Every migration, in order. */
export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = Object.freeze([
  {
    version: 1,
    name: 'initial',
    sql: `
      PRAGMA application_id = ${SQLITE_APPLICATION_ID};

      CREATE TABLE certificates (
        serial            TEXT PRIMARY KEY NOT NULL CHECK (length(serial) BETWEEN 1 AND 64 AND serial NOT GLOB '*[^0-9a-f]*'),
        spiffe_id         TEXT NOT NULL,
        profile           TEXT NOT NULL CHECK (profile IN ('service', 'operator', 'server')),
        not_before        INTEGER NOT NULL,
        not_after         INTEGER NOT NULL CHECK (not_after >= not_before),
        issued_at         INTEGER NOT NULL,
        sha256            TEXT NOT NULL UNIQUE CHECK (length(sha256) = 64),
        spki_sha256       TEXT NOT NULL CHECK (length(spki_sha256) = 64),
        issuer_serial     TEXT NOT NULL,
        renewed_from      TEXT REFERENCES certificates (serial),
        der               BLOB NOT NULL,
        revoked_at        INTEGER,
        revocation_reason TEXT CHECK (revocation_reason IN ('unspecified', 'keyCompromise', 'caCompromise',
                            'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn')),
        CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
      ) STRICT;
      -- Listings are newest issued first, optionally for one SPIFFE ID or a prefix.
      CREATE INDEX certificates_by_issued ON certificates (issued_at DESC, serial DESC);
      CREATE INDEX certificates_by_spiffe_id ON certificates (spiffe_id, issued_at DESC, serial DESC);
      CREATE INDEX certificates_by_not_after ON certificates (not_after);
      -- The CRL: revoked and not yet expired. Partial, so it stays as small as the CRL.
      CREATE INDEX certificates_revoked ON certificates (not_after) WHERE revoked_at IS NOT NULL;
      CREATE INDEX certificates_by_renewed_from ON certificates (renewed_from) WHERE renewed_from IS NOT NULL;

      -- Join tokens are stored as SHA-256 hashes only; used_at is set once (single use).
      CREATE TABLE join_tokens (
        id              TEXT PRIMARY KEY NOT NULL,
        hash            TEXT NOT NULL UNIQUE CHECK (length(hash) = 64),
        spiffe_id       TEXT NOT NULL,
        created_by      TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL CHECK (expires_at > created_at),
        used_at         INTEGER,
        used_for_serial TEXT,
        CHECK ((used_at IS NULL) = (used_for_serial IS NULL))
      ) STRICT;
      CREATE INDEX join_tokens_outstanding ON join_tokens (expires_at) WHERE used_at IS NULL;

      CREATE TABLE audit_entries (
        seq        INTEGER PRIMARY KEY CHECK (seq >= 1),
        time       INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        actor      TEXT NOT NULL,
        action     TEXT NOT NULL,
        outcome    TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
        subject    TEXT NOT NULL,
        reason     TEXT NOT NULL,
        details    TEXT NOT NULL CHECK (json_valid(details)),
        prev_hash  TEXT NOT NULL CHECK (length(prev_hash) = 64),
        hash       TEXT NOT NULL CHECK (length(hash) = 64)
      ) STRICT;
      CREATE INDEX audit_entries_by_actor ON audit_entries (actor, seq);
      CREATE INDEX audit_entries_by_action ON audit_entries (action, seq);
      CREATE INDEX audit_entries_by_subject ON audit_entries (subject, seq);
      CREATE INDEX audit_entries_by_time ON audit_entries (time);
      CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
      CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;

      CREATE TABLE audit_checkpoints (
        seq             INTEGER PRIMARY KEY REFERENCES audit_entries (seq),
        hash            TEXT NOT NULL CHECK (length(hash) = 64),
        time            INTEGER NOT NULL,
        algorithm       TEXT NOT NULL,
        key_spki_sha256 TEXT NOT NULL CHECK (length(key_spki_sha256) = 64),
        signature       TEXT NOT NULL
      ) STRICT;
      CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
      CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;

      CREATE TABLE counters (
        name  TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL CHECK (value >= 1)
      ) STRICT;
    `,
  },
  {
    version: 2,
    name: 'rotations',
    sql: `
      -- Forced rotations (ForceRotate) and the certificates each one targets.
      CREATE TABLE rotations (
        id           TEXT PRIMARY KEY NOT NULL,
        selector     TEXT NOT NULL,
        reason       TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        requested_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE rotation_targets (
        rotation_id TEXT NOT NULL REFERENCES rotations (id),
        serial      TEXT NOT NULL,
        spiffe_id   TEXT NOT NULL,
        not_after   INTEGER NOT NULL,
        connected   INTEGER NOT NULL CHECK (connected IN (0, 1)),
        status      TEXT NOT NULL CHECK (status IN ('pending', 'rotated', 'revoked')),
        new_serial  TEXT,
        finished_at INTEGER,
        PRIMARY KEY (rotation_id, serial),
        CHECK ((status = 'pending') = (finished_at IS NULL)),
        CHECK ((status = 'rotated') = (new_serial IS NOT NULL))
      ) STRICT;
      -- Renew looks up the pending targets of the caller's serial on every call: keep it small.
      CREATE INDEX rotation_targets_pending ON rotation_targets (serial) WHERE status = 'pending';
    `,
  },
]);

/** The schema version this code writes. */
export const SQLITE_SCHEMA_VERSION: number = SQLITE_MIGRATIONS.length;
