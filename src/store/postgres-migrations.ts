/**
 * The PostgreSQL schema as numbered migrations, the same tables and rules as the SQLite schema
 * (sqlite-migrations.ts). {@link PostgresStore.open} applies the missing ones in one transaction,
 * under an advisory lock so that brokers starting together migrate once, and records each in
 * `credbroker_schema`; it refuses a database whose schema is newer than this code. Never edit a
 * released migration: add the next one.
 *
 * Conventions: times are bigint milliseconds since the epoch (UTC), exactly as the SQLite store
 * keeps them (page tokens and round trips stay exact); hashes are lowercase hex. Text that is
 * compared or ordered (serials, SPIFFE IDs, ids) is `COLLATE "C"`: byte order, as in SQLite, so
 * prefix ranges and "newest first, ties by serial" do not depend on the server's locale. The
 * audit tables refuse UPDATE, DELETE and TRUNCATE with triggers (SQLSTATE CBA01): append-only by
 * construction, against bugs; the hash chain and the signed checkpoints detect a person with the
 * rights to drop a trigger.
 */

/** One schema step. */
export interface PostgresMigration {
  /** 1, 2, 3, … without gaps. */
  readonly version: number;
  /** Short name, recorded with the version; a mismatch on open means other code wrote the database. */
  readonly name: string;
  /** SQL statements, run as one simple query inside the migration transaction. */
  readonly sql: string;
}

/** Every migration, in order. */
export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = Object.freeze([
  {
    version: 1,
    name: 'initial',
    sql: `
      CREATE TABLE certificates (
        serial            text COLLATE "C" PRIMARY KEY CHECK (serial ~ '^[0-9a-f]{1,64}$'),
        spiffe_id         text COLLATE "C" NOT NULL,
        profile           text NOT NULL CHECK (profile IN ('service', 'operator', 'server')),
        not_before        bigint NOT NULL,
        not_after         bigint NOT NULL CHECK (not_after >= not_before),
        issued_at         bigint NOT NULL,
        sha256            text NOT NULL UNIQUE CHECK (length(sha256) = 64),
        spki_sha256       text NOT NULL CHECK (length(spki_sha256) = 64),
        issuer_serial     text NOT NULL,
        renewed_from      text COLLATE "C" REFERENCES certificates (serial),
        der               bytea NOT NULL,
        revoked_at        bigint,
        revocation_reason text CHECK (revocation_reason IN ('unspecified', 'keyCompromise', 'caCompromise',
                            'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn')),
        CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
      );
      -- Listings are newest issued first, optionally for one SPIFFE ID or a prefix.
      CREATE INDEX certificates_by_issued ON certificates (issued_at DESC, serial DESC);
      CREATE INDEX certificates_by_spiffe_id ON certificates (spiffe_id, issued_at DESC, serial DESC);
      CREATE INDEX certificates_by_not_after ON certificates (not_after);
      -- The CRL and every broker's revocation poll: revoked and not yet expired. Partial, so it
      -- stays as small as the CRL.
      CREATE INDEX certificates_revoked ON certificates (not_after) WHERE revoked_at IS NOT NULL;
      CREATE INDEX certificates_by_renewed_from ON certificates (renewed_from) WHERE renewed_from IS NOT NULL;

      -- Join tokens are stored as SHA-256 hashes only; used_at is set once (single use).
      CREATE TABLE join_tokens (
        id              text COLLATE "C" PRIMARY KEY,
        hash            text NOT NULL UNIQUE CHECK (length(hash) = 64),
        spiffe_id       text NOT NULL,
        created_by      text NOT NULL,
        created_at      bigint NOT NULL,
        expires_at      bigint NOT NULL CHECK (expires_at > created_at),
        used_at         bigint,
        used_for_serial text,
        CHECK ((used_at IS NULL) = (used_for_serial IS NULL))
      );
      CREATE INDEX join_tokens_outstanding ON join_tokens (expires_at) WHERE used_at IS NULL;

      CREATE TABLE audit_entries (
        seq        bigint PRIMARY KEY CHECK (seq >= 1),
        time       bigint NOT NULL,
        request_id text NOT NULL,
        actor      text COLLATE "C" NOT NULL,
        action     text COLLATE "C" NOT NULL,
        outcome    text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
        subject    text COLLATE "C" NOT NULL,
        reason     text NOT NULL,
        details    text NOT NULL,
        prev_hash  text NOT NULL CHECK (length(prev_hash) = 64),
        hash       text NOT NULL CHECK (length(hash) = 64)
      );
      CREATE INDEX audit_entries_by_actor ON audit_entries (actor, seq);
      CREATE INDEX audit_entries_by_action ON audit_entries (action, seq);
      CREATE INDEX audit_entries_by_subject ON audit_entries (subject, seq);
      CREATE INDEX audit_entries_by_time ON audit_entries (time);

      CREATE TABLE audit_checkpoints (
        seq             bigint PRIMARY KEY REFERENCES audit_entries (seq),
        hash            text NOT NULL CHECK (length(hash) = 64),
        time            bigint NOT NULL,
        algorithm       text NOT NULL,
        key_spki_sha256 text NOT NULL CHECK (length(key_spki_sha256) = 64),
        signature       text NOT NULL
      );

      CREATE FUNCTION credbroker_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'CBA01';
      END
      $$;
      CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
        FOR EACH ROW EXECUTE FUNCTION credbroker_append_only();
      CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
        FOR EACH STATEMENT EXECUTE FUNCTION credbroker_append_only();
      CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
        FOR EACH ROW EXECUTE FUNCTION credbroker_append_only();
      CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
        FOR EACH STATEMENT EXECUTE FUNCTION credbroker_append_only();

      CREATE TABLE counters (
        name  text COLLATE "C" PRIMARY KEY,
        value bigint NOT NULL CHECK (value >= 1)
      );

      -- Forced rotations (ForceRotate) and the certificates each one targets.
      CREATE TABLE rotations (
        id           text COLLATE "C" PRIMARY KEY,
        selector     text NOT NULL,
        reason       text NOT NULL,
        requested_by text NOT NULL,
        requested_at bigint NOT NULL
      );

      CREATE TABLE rotation_targets (
        rotation_id text COLLATE "C" NOT NULL REFERENCES rotations (id),
        serial      text COLLATE "C" NOT NULL,
        spiffe_id   text NOT NULL,
        not_after   bigint NOT NULL,
        connected   boolean NOT NULL,
        status      text NOT NULL CHECK (status IN ('pending', 'rotated', 'revoked')),
        new_serial  text,
        finished_at bigint,
        PRIMARY KEY (rotation_id, serial),
        CHECK ((status = 'pending') = (finished_at IS NULL)),
        CHECK ((status = 'rotated') = (new_serial IS NOT NULL))
      );
      -- Renew looks up the pending targets of the caller's serial on every call: keep it small.
      CREATE INDEX rotation_targets_pending ON rotation_targets (serial) WHERE status = 'pending';
    `,
  },
]);

/** The schema version this code writes. */
export const POSTGRES_SCHEMA_VERSION: number = POSTGRES_MIGRATIONS.length;
