/**
 * The broker's Prometheus metrics (issue 6), on a registry of its own: several brokers in one
 * process (the tests) never share counters, and nothing lands in prom-client's global registry.
 *
 * Two kinds of figures:
 * - counted as things happen, on the hot path: a counter increment and a histogram observation
 *   per RPC, per HSM signature, per issued certificate or token, per rotation;
 * - read at scrape time: HSM pool and state, Watch streams, CA expiry (no I/O), and the figures
 *   of the store (join tokens outstanding, audit chain and checkpoint, rotation coverage), read
 *   at most once per {@link DEFAULT_STORE_FIGURES_MAX_AGE_MS} whatever the scrape rate.
 *
 * Label values are RPC and status names, key labels, profiles, audiences, reasons, CA roles and
 * serials: never a token, a join token, a CSR, a PIN or anything a caller typed into a refused
 * request (audiences are recorded only once policy granted them).
 */
import type * as x509 from '@peculiar/x509';
import * as grpc from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { silentLogger, type Clock, type Logger, type RevocationReason } from '../core/index.js';
import type { HsmSignObserver, HsmToken } from '../hsm/index.js';
import type { CertificateRecord, Store } from '../store/index.js';
import type { RpcObserver } from './grpc-server.js';
import type { RotationHub, RotationObserver } from './rotation-service.js';
import { coverageRatio, rotationCoverage, type CoverageFigures, type CoverageProfile } from './rotation-coverage.js';
import { ScrapeCache } from './scrape-cache.js';
import type { IssuedTokenFacts } from './token-service.js';

/** RPC latency buckets, in seconds: 0.5 ms (a cached reply) to 5 s (a saturated HSM). */
export const RPC_DURATION_BUCKETS_SECONDS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
/** HSM signature latency buckets, in seconds: 50 µs (P-256 on SoftHSM) to 1 s (a slow network HSM). */
export const SIGN_DURATION_BUCKETS_SECONDS: readonly number[] = Object.freeze([0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]);
/** The backdate every issued certificate carries (notBefore = now − 60 s), in seconds. */
const BACKDATE_SECONDS = 60;
/**
 * Certificate validity buckets, in seconds: 5 min to 24 h (the hard cap), each plus the 60 s
 * backdate, so that a certificate issued for 1 h (notAfter − notBefore = 3660 s) counts in
 * le="3660" and not in the next bucket.
 */
export const CERTIFICATE_TTL_BUCKETS_SECONDS: readonly number[] = Object.freeze([300, 900, 1800, 3600, 7200, 14_400, 28_800, 43_200, 86_400].map((s) => s + BACKDATE_SECONDS));
/** Token lifetime buckets, in seconds: 30 s to 1 h (the hard cap). */
export const TOKEN_TTL_BUCKETS_SECONDS: readonly number[] = Object.freeze([30, 60, 120, 300, 600, 900, 1800, 3600]);
/** Rotation MTTR buckets, in seconds: a pushed renewal (under a second) to an offline agent renewing on its own schedule (a day). */
export const ROTATION_MTTR_BUCKETS_SECONDS: readonly number[] = Object.freeze([0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 14_400, 86_400]);
/** How long the store's figures are reused between scrapes, in ms. */
export const DEFAULT_STORE_FIGURES_MAX_AGE_MS = 5_000;
/** Certificates read per store transaction when counting live identities (RPCs interleave between pages). */
const LIVE_PAGE_SIZE = 1_000;

/** What scrape-time figures are read from; attached once the broker has assembled them. */
export interface MetricsSources {
  readonly store: Store;
  readonly hub: Pick<RotationHub, 'size' | 'isConnected'>;
  readonly token: Pick<HsmToken, 'state' | 'poolUsage' | 'stats'>;
  /** The CA now: its roots, issuing intermediate and (during a roll-over) the other published ones. */
  readonly ca: () => { readonly roots: readonly x509.X509Certificate[]; readonly intermediate: x509.X509Certificate; readonly intermediates?: readonly x509.X509Certificate[] };
  /** 1 when no next intermediate is prepared by the prepare time, else 0 (default: never). */
  readonly caWarnings?: () => number;
}

/** Options of {@link BrokerMetrics}. */
export interface BrokerMetricsOptions {
  /** The broker's clock: CA expiry, checkpoint age, live certificates, store figure freshness. */
  readonly clock: Clock;
  readonly logger?: Logger;
  /** Default {@link DEFAULT_STORE_FIGURES_MAX_AGE_MS}. */
  readonly storeFiguresMaxAgeMs?: number;
  /** Add prom-client's process and Node.js metrics (event-loop lag, CPU, memory, GC). Default true. */
  readonly defaultMetrics?: boolean;
}

/** What one read of the store gives. */
export interface StoreFigures {
  readonly joinTokensOutstanding: number;
  /** seq of the newest audit entry; 0 for an empty log. */
  readonly auditLastSeq: number;
  readonly lastCheckpoint: { readonly seq: number; readonly time: Date } | null;
  readonly coverage: ReadonlyMap<CoverageProfile, CoverageFigures>;
}

/** Status names by code, as metrics label them (OK, PERMISSION_DENIED, …). */
const STATUS_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(grpc.status)
    .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
    .map(([name, code]) => [code, name]),
);

/** The metrics of one broker, and the observers that feed them. */
export class BrokerMetrics implements RpcObserver, HsmSignObserver, RotationObserver {
  /** The broker's own registry (what `/metrics` serves). */
  readonly registry = new Registry();
  readonly #clock: Clock;
  readonly #logger: Logger;
  #sources: MetricsSources | null = null;
  readonly #storeFigures: ScrapeCache<StoreFigures | null>;

  readonly #rpcRequests: Counter<'rpc' | 'outcome'>;
  readonly #rpcDuration: Histogram<'rpc'>;
  readonly #signDuration: Histogram<'key'>;
  readonly #certificateTtl: Histogram<'profile'>;
  readonly #tokensIssued: Counter<'audience' | 'bound'>;
  readonly #tokenTtl: Histogram<'audience'>;
  readonly #rotations: Counter<'reason'>;
  readonly #rotationTargets: Counter<'reason'>;
  readonly #rotationMttr: Histogram<'reason'>;
  readonly #storeErrors: Counter;
  /** Bound children per label set: the hot path skips prom-client's label hashing. */
  readonly #rpcChildren = new Map<string, { count(): void; observe(seconds: number): void }>();
  readonly #signChildren = new Map<string, (seconds: number) => void>();

  constructor(options: BrokerMetricsOptions) {
    this.#clock = options.clock;
    this.#logger = options.logger ?? silentLogger;
    const registers = [this.registry];
    const sources = (): MetricsSources | null => this.#sources;

    this.#rpcRequests = new Counter({
      name: 'credbroker_rpc_requests_total',
      help: 'gRPC calls handled, by method and final status (OK, PERMISSION_DENIED, ...). Watch counts when its stream is accepted or refused.',
      labelNames: ['rpc', 'outcome'] as const,
      registers,
    });
    this.#rpcDuration = new Histogram({
      name: 'credbroker_rpc_duration_seconds',
      help: 'Latency of unary gRPC calls, from receipt to reply, by method (every outcome).',
      labelNames: ['rpc'] as const,
      buckets: [...RPC_DURATION_BUCKETS_SECONDS],
      registers,
    });
    new Gauge({
      name: 'credbroker_watch_streams_open',
      help: 'Rotation/Watch streams open on this broker.',
      registers,
      collect() {
        this.set(sources()?.hub.size ?? 0);
      },
    });

    this.#signDuration = new Histogram({
      name: 'credbroker_hsm_sign_duration_seconds',
      help: 'Latency of HSM signatures by key label, from the call to the verified signature (session wait and verify-after-sign included).',
      labelNames: ['key'] as const,
      buckets: [...SIGN_DURATION_BUCKETS_SECONDS],
      registers,
    });
    const hsmGauge = (name: string, help: string, read: (token: MetricsSources['token']) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const token = sources()?.token;
          if (token !== undefined) this.set(read(token));
        },
      });
    };
    hsmGauge('credbroker_hsm_up', 'HSM token state: 1 open, 0 reconnecting, failed (PIN refused) or closed.', (token) => (token.state === 'open' ? 1 : 0));
    hsmGauge('credbroker_hsm_sessions', 'Sessions in the HSM session pool.', (token) => token.poolUsage.size);
    hsmGauge('credbroker_hsm_sessions_in_use', 'HSM sessions lent out right now.', (token) => token.poolUsage.inUse);
    hsmGauge('credbroker_hsm_session_waiters', 'Callers waiting for an HSM session.', (token) => token.poolUsage.waiting);
    const hsmCounter = (name: string, help: string, read: (token: MetricsSources['token']) => number): void => {
      let reported = 0;
      new Counter({
        name,
        help,
        registers,
        collect() {
          const token = sources()?.token;
          if (token === undefined) return;
          const value = read(token);
          if (value > reported) this.inc(value - reported);
          reported = Math.max(reported, value);
        },
      });
    };
    hsmCounter(
      'credbroker_hsm_verify_after_sign_failures_total',
      'HSM signatures the software verification caught as invalid (each is retried once; SoftHSMv2 #901).',
      (token) => token.stats.invalidSignatures,
    );
    hsmCounter('credbroker_hsm_session_losses_total', 'Times the HSM token was found lost.', (token) => token.stats.sessionLosses);
    hsmCounter('credbroker_hsm_reconnects_total', 'Successful reconnections to the HSM token.', (token) => token.stats.reconnects);

    this.#certificateTtl = new Histogram({
      name: 'credbroker_certificate_ttl_seconds',
      help: 'Validity of issued certificates (notAfter - notBefore, the 60 s backdate included), by profile.',
      labelNames: ['profile'] as const,
      buckets: [...CERTIFICATE_TTL_BUCKETS_SECONDS],
      registers,
    });
    this.#tokensIssued = new Counter({
      name: 'credbroker_tokens_issued_total',
      help: 'Tokens issued, by audience and whether bound to the caller certificate (cnf x5t#S256).',
      labelNames: ['audience', 'bound'] as const,
      registers,
    });
    this.#tokenTtl = new Histogram({
      name: 'credbroker_token_ttl_seconds',
      help: 'Lifetime of issued tokens (exp - iat), by audience.',
      labelNames: ['audience'] as const,
      buckets: [...TOKEN_TTL_BUCKETS_SECONDS],
      registers,
    });

    const clock = this.#clock;
    new Gauge({
      name: 'credbroker_ca_certificate_expires_in_seconds',
      help: 'Seconds until each CA certificate expires (negative once expired), by role (root, intermediate: the issuing one, intermediate_published: prepared or retiring) and serial.',
      labelNames: ['role', 'serial'] as const,
      registers,
      collect() {
        this.reset();
        const ca = sources()?.ca();
        if (ca === undefined) return;
        const nowMs = clock.now().getTime();
        const set = (role: string, certificate: x509.X509Certificate): void => {
          this.set({ role, serial: certificate.serialNumber.toLowerCase() }, (certificate.notAfter.getTime() - nowMs) / 1000);
        };
        for (const root of ca.roots) set('root', root);
        set('intermediate', ca.intermediate);
        for (const other of ca.intermediates ?? []) if (other !== ca.intermediate) set('intermediate_published', other);
      },
    });
    new Gauge({
      name: 'credbroker_ca_next_intermediate_missing',
      help: '1 when the active intermediate passed its prepare time (1/2 of its life by default) and no next intermediate is prepared: run an intermediate ceremony.',
      registers,
      collect() {
        this.set(sources()?.caWarnings?.() ?? 0);
      },
    });

    this.#rotations = new Counter({
      name: 'credbroker_rotations_total',
      help: 'Forced rotations (ForceRotate), by revocation reason.',
      labelNames: ['reason'] as const,
      registers,
    });
    this.#rotationTargets = new Counter({
      name: 'credbroker_rotation_targets_total',
      help: 'Live certificates forced rotations targeted, by revocation reason.',
      labelNames: ['reason'] as const,
      registers,
    });
    this.#rotationMttr = new Histogram({
      name: 'credbroker_rotation_mttr_seconds',
      help: 'Time from a forced rotation request until each target holder renewed (its new certificate was issued), by reason.',
      labelNames: ['reason'] as const,
      buckets: [...ROTATION_MTTR_BUCKETS_SECONDS],
      registers,
    });

    this.#storeFigures = new ScrapeCache(() => this.#readStoreFigures(), this.#clock, options.storeFiguresMaxAgeMs ?? DEFAULT_STORE_FIGURES_MAX_AGE_MS);
    const figures = (): Promise<StoreFigures | null> => this.#storeFigures.get();
    this.#storeErrors = new Counter({
      name: 'credbroker_metrics_store_read_errors_total',
      help: 'Scrape-time reads of the store that failed (the store figures read NaN or are absent until the next good read).',
      registers,
      // The registry collects every metric at once: wait for this scrape's read, so it counts here.
      async collect() {
        if (sources() !== null) await figures();
      },
    });
    const storeGauge = (name: string, help: string, read: (figures: StoreFigures) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          if (sources() === null) return;
          const read_ = await figures();
          this.set(read_ === null ? Number.NaN : read(read_));
        },
      });
    };
    storeGauge('credbroker_join_tokens_outstanding', 'Join tokens neither used nor expired.', (f) => f.joinTokensOutstanding);
    storeGauge('credbroker_audit_chain_length', 'Entries in the audit hash chain (seq of the newest).', (f) => f.auditLastSeq);
    storeGauge('credbroker_audit_unchecked_entries', 'Audit entries after the last signed checkpoint.', (f) => f.auditLastSeq - (f.lastCheckpoint?.seq ?? 0));
    storeGauge(
      'credbroker_audit_checkpoint_age_seconds',
      'Seconds since the last signed audit checkpoint (NaN before the first).',
      (f) => (f.lastCheckpoint === null ? Number.NaN : Math.max(0, clock.now().getTime() - f.lastCheckpoint.time.getTime()) / 1000),
    );
    const coverageGauge = (name: string, help: string, read: (figures: CoverageFigures) => number | null): void => {
      new Gauge({
        name,
        help,
        labelNames: ['profile'] as const,
        registers,
        async collect() {
          if (sources() === null) return;
          const read_ = await figures();
          this.reset();
          for (const [profile, coverage] of read_?.coverage ?? []) {
            const value = read(coverage);
            if (value !== null) this.set({ profile }, value);
          }
        },
      });
    };
    coverageGauge(
      'credbroker_rotation_coverage_ratio',
      'Identities with a live certificate whose agent keeps a Watch stream open on it, divided by identities with a live certificate, by profile.',
      coverageRatio,
    );
    coverageGauge('credbroker_live_identities', 'Identities (distinct SPIFFE IDs) holding a live certificate, by profile.', (f) => f.identities);
    coverageGauge('credbroker_watching_identities', 'Identities with a live certificate watched by a Watch stream, by profile.', (f) => f.watching);

    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Connects the scrape-time figures to the broker's parts (once they exist). */
  attach(sources: MetricsSources): void {
    this.#sources = sources;
  }

  /** @see RpcObserver */
  unaryFinished(rpc: string, code: grpc.status, seconds: number): void {
    const key = `${rpc}\u0000${code}`;
    let child = this.#rpcChildren.get(key);
    if (child === undefined) {
      const counter = this.#rpcRequests.labels({ rpc, outcome: STATUS_NAMES.get(code) ?? 'UNKNOWN' });
      const histogram = this.#rpcDuration.labels({ rpc });
      child = {
        count: () => {
          counter.inc();
        },
        observe: (value) => {
          histogram.observe(value);
        },
      };
      this.#rpcChildren.set(key, child);
    }
    child.count();
    child.observe(seconds);
  }

  /** @see RpcObserver */
  watchStarted(code: grpc.status): void {
    this.#rpcRequests.inc({ rpc: 'Watch', outcome: STATUS_NAMES.get(code) ?? 'UNKNOWN' });
  }

  /** @see HsmSignObserver */
  signed(keyLabel: string, seconds: number): void {
    let observe = this.#signChildren.get(keyLabel);
    if (observe === undefined) {
      const child = this.#signDuration.labels({ key: keyLabel });
      observe = (value) => {
        child.observe(value);
      };
      this.#signChildren.set(keyLabel, observe);
    }
    observe(seconds);
  }

  /** A certificate was issued and recorded (Enroll, Renew, Issue). */
  certificateIssued(certificate: Pick<CertificateRecord, 'profile' | 'notBefore' | 'notAfter'>): void {
    this.#certificateTtl.observe({ profile: certificate.profile }, (certificate.notAfter.getTime() - certificate.notBefore.getTime()) / 1000);
  }

  /** A token was issued and audited. */
  tokenIssued(token: IssuedTokenFacts): void {
    this.#tokensIssued.inc({ audience: token.audience, bound: String(token.bound) });
    this.#tokenTtl.observe({ audience: token.audience }, token.ttlSeconds);
  }

  /** @see RotationObserver */
  rotationRequested(reason: RevocationReason, targets: number): void {
    this.#rotations.inc({ reason });
    this.#rotationTargets.inc({ reason }, targets);
  }

  /** @see RotationObserver */
  targetRotated(reason: RevocationReason, seconds: number): void {
    this.#rotationMttr.observe({ reason }, seconds);
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** One read of the store's figures: null (counted, logged) when the store fails. */
  async #readStoreFigures(): Promise<StoreFigures | null> {
    const sources = this.#sources;
    if (sources === null) return null;
    try {
      return await readStoreFigures(sources.store, sources.hub, this.#clock.now());
    } catch (error) {
      this.#storeErrors.inc();
      this.#logger.warn({ error: String(error) }, 'metrics: reading the store failed; its figures are unknown until the next scrape');
      return null;
    }
  }
}

/**
 * The store's figures at `now`: one short transaction for the counts, then the live certificates
 * page by page, each page its own transaction so that RPCs interleave with a large fleet's scan.
 */
export async function readStoreFigures(store: Store, hub: Pick<RotationHub, 'isConnected'>, now: Date): Promise<StoreFigures> {
  const counts = await store.transaction(async (tx) => ({
    joinTokensOutstanding: await tx.countOutstandingJoinTokens(now),
    last: await tx.lastAuditEntry(),
    checkpoint: await tx.lastAuditCheckpoint(),
  }));
  const live: Pick<CertificateRecord, 'serial' | 'spiffeId' | 'profile'>[] = [];
  let pageToken = '';
  do {
    const page = await store.transaction((tx) => tx.listCertificates({ validAt: now, revoked: false }, LIVE_PAGE_SIZE, pageToken));
    for (const certificate of page.items) live.push({ serial: certificate.serial, spiffeId: certificate.spiffeId, profile: certificate.profile });
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  return {
    joinTokensOutstanding: counts.joinTokensOutstanding,
    auditLastSeq: counts.last?.seq ?? 0,
    lastCheckpoint: counts.checkpoint === null ? null : { seq: counts.checkpoint.seq, time: counts.checkpoint.time },
    coverage: rotationCoverage(live, (serial) => hub.isConnected(serial)),
  };
}
