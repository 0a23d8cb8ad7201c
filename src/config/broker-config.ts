/**
 * The broker's whole configuration file. Strict: unknown keys are errors. `hsm` is needed by
 * every command that logs in; `ca`, `server`, `store`, `policy` and `audit` by `credbroker
 * serve` (they are optional in the schema so `credbroker hsm --config` works with a file that
 * has only an `hsm` section; `serve` reports the missing ones). Relative paths are relative to
 * the config file's folder.
 */
import { z } from 'zod';
import { parseDurationMs } from '../core/index.js';
import type { DeepReadonly } from './deep-freeze.js';
import { durationSchema } from './duration-schema.js';
import { hsmConfigSchema } from './hsm-config.js';
import { metricsConfigSchema } from './metrics-config.js';
import { secretSource } from './secret-source.js';

const duration = durationSchema;

const keyLabel = z.string().min(1).max(64);

/** The online CA: the intermediate's key on the HSM token and its certificate, and the roots. */
export const caConfigSchema = z.strictObject({
  /** Label of the intermediate's key on the online token (see the ceremony plan). */
  intermediateKey: keyLabel,
  /** The intermediate's certificate (PEM), written by the ceremony. */
  intermediateCertificate: z.string().min(1),
  /** Root certificates (PEM files) peers trust. */
  roots: z.array(z.string().min(1)).min(1),
  /**
   * Cross certificates of a root renewal (PEM files written by the ceremony's `rootRenewal`):
   * sent after the intermediate in every chain the broker returns or presents, and in the trust
   * bundle's intermediates, so that a peer trusting only the old root accepts leaves under the
   * new one and the other way round. Default none.
   */
  crossCertificates: z.array(z.string().min(1)).max(8).default([]),
  /**
   * Further intermediates of this CA, oldest first: the next ones made by a ceremony (key on the
   * online token, certificate signed by a root). Each is published in the trust bundle at once
   * (prepared) and activated at `activateAtFraction` of the active one's life. SIGHUP re-reads
   * this list. Default none.
   */
  intermediates: z.array(z.strictObject({ key: keyLabel, certificate: z.string().min(1) })).max(16).default([]),
  /** Fraction of the active intermediate's life by which a next one should be prepared (warned otherwise). Default 1/2. */
  prepareAtFraction: z.number().gt(0).lt(1).default(0.5),
  /** Fraction of the active intermediate's life at which the prepared one is activated. Default 5/6. */
  activateAtFraction: z.number().gt(0).lt(1).default(5 / 6),
  /** How often the roll-over schedule is checked (it is also checked on every issuance). Default 60s. */
  rolloverCheckInterval: duration.default('60s'),
  /** Where the broker records activations and roll-overs (JSON, written atomically). Default ./ca-state.json. */
  stateFile: z.string().min(1).default('./ca-state.json'),
});

/** The gRPC listener and the broker's own server certificate. */
export const serverConfigSchema = z.strictObject({
  /** host:port to listen on; port 0 picks a free one (printed at start). Default 127.0.0.1:8443. */
  listen: z.string().min(1).default('127.0.0.1:8443'),
  /** DNS names of the broker's server certificate (what clients dial). Default [localhost]. */
  dnsNames: z.array(z.string().min(1)).default(['localhost']),
  /** IP addresses of the broker's server certificate. Default [127.0.0.1, ::1]. */
  ipAddresses: z.array(z.string().min(1)).default(['127.0.0.1', '::1']),
  /** Lifetime of the broker's own server certificate; renewed at two thirds. Default 12h, at most 24h. */
  certificateTtl: duration.default('12h').refine((value) => parseDurationMs(value) <= 86_400_000, { error: 'at most 24h' }),
  /** How long SIGTERM waits for running calls before closing. Default 10s. */
  drainTimeout: duration.default('10s'),
  /** Known-answer self-test of every online key this often (health NOT_SERVING on failure). Default 30s. */
  healthCheckInterval: duration.default('30s'),
  /** Health is NOT_SERVING when the intermediate has less than this left. Default 24h (the longest leaf). */
  intermediateExpiryMargin: duration.default('24h'),
  /** Enroll attempts per source address: a burst, then so many per minute (RESOURCE_EXHAUSTED beyond). */
  enrollRateLimit: z
    .strictObject({ burst: z.int().min(1).max(10_000).default(20), perMinute: z.int().min(1).max(100_000).default(30) })
    .default({ burst: 20, perMinute: 30 }),
});

/** One SQLite file: one broker (the embedded default). */
export const sqliteStoreConfigSchema = z.strictObject({
  kind: z.literal('sqlite'),
  /** SQLite database file. Default ./credbroker.db. */
  path: z.string().min(1).default('./credbroker.db'),
});

/** Default period of a broker's revocation poll on a shared (PostgreSQL) store. */
export const DEFAULT_REVOCATION_POLL_INTERVAL = '2s';

/**
 * A PostgreSQL database that several brokers share (src/store/postgres-store.ts). The password
 * comes from a secret source, like every secret: never the config file or the environment.
 */
export const postgresStoreConfigSchema = z.strictObject({
  kind: z.literal('postgres'),
  /** Host name or IP address of the server, or the absolute path of the folder of its unix socket. */
  host: z.string().min(1),
  /** Default 5432. */
  port: z.int().min(1).max(65_535).default(5432),
  database: z.string().min(1).max(63),
  user: z.string().min(1).max(63),
  /** Where the user's password comes from; absent only for logins that need none (peer, trust). */
  password: secretSource('PostgreSQL password').optional(),
  /**
   * TLS to the server, its certificate always verified: `ca` a PEM file of the CAs to trust
   * (default: the system's), `servername` the name to verify (default: host). Absent: no TLS (a
   * unix socket, or a private network).
   */
  ssl: z.strictObject({ ca: z.string().min(1).optional(), servername: z.string().min(1).optional() }).optional(),
  /** Connections per broker, 2..100. Default 4. */
  poolSize: z.int().min(2).max(100).default(4),
  /**
   * How often each broker reads the revocations every broker made (its peer check refuses a
   * revoked certificate by then). Default 2s; 100ms to 60s.
   */
  revocationPollInterval: duration
    .default(DEFAULT_REVOCATION_POLL_INTERVAL)
    .refine((value) => parseDurationMs(value) >= 100 && parseDurationMs(value) <= 60_000, { error: 'expected 100ms to 60s' }),
  /** Longest wait for another broker's transaction to end (then UNAVAILABLE, retry). Default 5s; at most 60s. */
  lockTimeout: duration.default('5s').refine((value) => parseDurationMs(value) <= 60_000, { error: 'at most 60s' }),
  // Lets tools written for SQLite read `store.path` of either kind (undefined here).
  path: z.never({ error: 'a postgres store has no path (path is for kind: sqlite)' }).optional(),
});

/**
 * Where certificates, join token hashes and the audit log live: `{ kind: sqlite, path }` (the
 * default, also when `kind` is left out) or `{ kind: postgres, host, port, database, user,
 * password, ... }`.
 */
export const storeConfigSchema = z.preprocess(
  (value) => (typeof value === 'object' && value !== null && !Array.isArray(value) && !('kind' in value) ? { kind: 'sqlite', ...value } : value),
  z.discriminatedUnion('kind', [sqliteStoreConfigSchema, postgresStoreConfigSchema], { error: 'expected kind: sqlite or kind: postgres' }),
);

/** The validated `store` section. */
export type StoreConfig = DeepReadonly<z.output<typeof storeConfigSchema>>;

/** The audit log's signed checkpoints. */
export const auditConfigSchema = z.strictObject({
  /** Label of the audit checkpoint key on the online token. */
  key: keyLabel,
  /** Sign a checkpoint after this many entries (default 1000) … */
  checkpointEveryEntries: z.int().min(1).max(1_000_000).default(1000),
  /** … or this long after the last one, when there are new entries (default 60s). */
  checkpointEvery: duration.default('60s'),
});

/** Signed tokens (IssueToken): the token-signing key and the `iss` claim. */
export const tokensConfigSchema = z.strictObject({
  /** Label of the token-signing key on the online token (the ceremony's `tokenSigning`). */
  key: keyLabel,
  /** The `iss` claim; verifiers compare it exactly. Default `spiffe://<trust domain>/credbroker`. */
  issuer: z.string().min(1).max(256).optional(),
  /**
   * Label of the next token-signing key (made by a ceremony): published in GetJwks at once, it
   * signs from `nextKeyPublishFor` later on (or on Administration/RollTokenKey). The old key
   * stays in the JWKS until the last token it signed expired. Default none.
   */
  nextKey: keyLabel.optional(),
  /** How long the next key is published before it signs (longer than verifiers' JWKS refresh, default 5 min). Default 24h. */
  nextKeyPublishFor: duration.default('24h'),
});

/** The schema of `credbroker serve`'s config file. */
export const brokerConfigSchema = z
  .strictObject({
    hsm: hsmConfigSchema,
    ca: caConfigSchema.optional(),
    server: serverConfigSchema.optional(),
    store: storeConfigSchema.optional(),
    /** The policy file (pki/policy.yaml format). */
    policy: z.string().min(1).optional(),
    audit: auditConfigSchema.optional(),
    /** Absent: IssueToken answers FAILED_PRECONDITION (tokens not configured). */
    tokens: tokensConfigSchema.optional(),
    /** Prometheus `/metrics` listener (src/config/metrics-config.ts). Absent: enabled on 127.0.0.1:9464. */
    metrics: metricsConfigSchema.optional(),
  })
  .describe('credbroker broker configuration');

/** The validated broker configuration, defaults applied, read-only. */
export type BrokerConfig = DeepReadonly<z.output<typeof brokerConfigSchema>>;
