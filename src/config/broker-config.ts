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

/** Where certificates, join token hashes and the audit log live. */
export const storeConfigSchema = z.strictObject({
  kind: z.literal('sqlite').default('sqlite'),
  /** SQLite database file. Default ./credbroker.db. */
  path: z.string().min(1).default('./credbroker.db'),
});

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
