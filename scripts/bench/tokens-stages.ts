/**
 * Where an IssueToken's time goes inside the benchmark's broker, without a hook in src/: the
 * issue benchmark's {@link StageProbe} (HSM C_Sign per key label, store transactions and their
 * audit rows), a wrapper around `tokens.issueToken` (the whole decision after TLS, HTTP/2,
 * protobuf and the peer check), and the time of every SQLite COMMIT (the group commit's fsync,
 * synchronous on the event loop). And the decision's own ceiling: TokenService.issueToken called
 * in this process, as the gRPC handler calls it, with no transport at all.
 *
 * Times are wall clock per call: at concurrency above 1 they include waiting for the event
 * loop, the HSM session and the group commit. Only for benchmarks: the wrappers stay for the
 * broker's lifetime.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import type { RunningBroker } from '../../src/server/index.js';
import type { ClientIdentity } from '../../test/e2e/harness.js';
import { StageProbe, type StageTotals } from './issue-stages.js';
import { mainThreadCpuMs, type WindowProbe } from './tokens-measure.js';

/** Sums over a window: IssueToken decisions, and the stages StageProbe sees. */
export interface TokenStageTotals {
  /** TokenService.issueToken calls completed (successful or not). */
  readonly issues: number;
  readonly issueMs: number;
  /** StageProbe's totals; its "leaf" signatures are those of the token-signing key here. */
  readonly stages: StageTotals;
  /** SQLite COMMITs (one per group-commit batch) and their time on the event loop, fsync included, ms. */
  readonly commits: number;
  readonly commitMs: number;
}

/** Timing of every better-sqlite3 COMMIT in this process (installed once, for the process's lifetime). */
interface CommitTotals {
  measuring: boolean;
  commits: number;
  commitMs: number;
}

let commitTotals: CommitTotals | null = null;

/**
 * Wraps better-sqlite3's `Database.prototype.exec` so that `COMMIT` is timed: the store runs its
 * group commit synchronously on the event loop (fsync included with synchronous = FULL), which
 * the store's own methods do not show.
 */
function commitTimer(): CommitTotals {
  if (commitTotals !== null) return commitTotals;
  const totals: CommitTotals = { measuring: false, commits: 0, commitMs: 0 };
  // Called with the connection as `this`, as the original is.
  const exec = Reflect.get<Database.Database, 'exec'>(Database.prototype, 'exec');
  Database.prototype.exec = function timedExec(this: Database.Database, source: string): Database.Database {
    if (!totals.measuring || source !== 'COMMIT') return exec.call(this, source);
    const started = performance.now();
    try {
      return exec.call(this, source);
    } finally {
      totals.commits++;
      totals.commitMs += performance.now() - started;
    }
  };
  commitTotals = totals;
  return totals;
}

/** What one IssueToken asks for (the gRPC request, decoded). */
export interface TokenAsk {
  readonly audience: string;
  readonly scopes: readonly string[];
  readonly ttlSeconds: number;
  readonly bindToCertificate: boolean;
}

/** Stage timing of IssueToken on a running broker; a {@link WindowProbe}. */
export class TokenStageProbe implements WindowProbe {
  readonly #stages: StageProbe;
  readonly #commits = commitTimer();
  #measuring = false;
  #issues = 0;
  #issueMs = 0;
  #last: TokenStageTotals | null = null;

  private constructor(stages: StageProbe) {
    this.#stages = stages;
  }

  /** Wraps the broker's token service, HSM token and store; `tokenKeyLabel` names the token-signing key. */
  static attach(broker: RunningBroker, tokenKeyLabel: string): TokenStageProbe {
    const probe = new TokenStageProbe(StageProbe.attach(broker, tokenKeyLabel));
    const tokens = broker.tokens;
    const issueToken = tokens.issueToken.bind(tokens);
    tokens.issueToken = async (caller, request) => {
      const started = performance.now();
      try {
        return await issueToken(caller, request);
      } finally {
        if (probe.#measuring) {
          probe.#issues++;
          probe.#issueMs += performance.now() - started;
        }
      }
    };
    return probe;
  }

  start(): void {
    this.#issues = 0;
    this.#issueMs = 0;
    this.#commits.commits = 0;
    this.#commits.commitMs = 0;
    this.#commits.measuring = true;
    this.#measuring = true;
    this.#stages.start();
  }

  stop(): void {
    if (!this.#measuring) return;
    this.#measuring = false;
    this.#commits.measuring = false;
    this.#last = { issues: this.#issues, issueMs: this.#issueMs, stages: this.#stages.stop(), commits: this.#commits.commits, commitMs: this.#commits.commitMs };
  }

  /** The totals of the last window (null before one ended). */
  get last(): TokenStageTotals | null {
    return this.#last;
  }
}

/** TokenService.issueToken alone in this process. */
export interface IssueAlone {
  readonly perSecond: number;
  readonly calls: number;
  /** Main-thread CPU per call, ms. */
  readonly mainCpuMs: number;
  /** Process CPU (main thread + thread pool) per call, ms. */
  readonly processCpuMs: number;
}

/** Most calls of {@link issueInProcess}, whatever the speed. */
const MAX_IN_PROCESS_CALLS = 200_000;

/**
 * Calls TokenService.issueToken in this process, as the gRPC handler does after the peer check,
 * with `concurrency` calls in flight for about `seconds` (bounded in count too): policy check,
 * claims, HSM sign, verify-after-sign, audit transaction.
 * @throws Error after the first failed call (a ceiling of failures would measure nothing)
 */
export async function issueInProcess(broker: RunningBroker, spiffeId: string, identity: ClientIdentity, ask: TokenAsk, concurrency: number, seconds: number): Promise<IssueAlone> {
  const certificate = new X509Certificate(identity.certificatePem);
  const peer = {
    spiffeId,
    serial: identity.serial,
    notBefore: new Date(certificate.validFrom),
    notAfter: new Date(certificate.validTo),
    spkiSha256: createHash('sha256').update(certificate.publicKey.export({ format: 'der', type: 'spki' })).digest('hex'),
    certificateSha256: createHash('sha256').update(certificate.raw).digest('hex'),
  };
  const request = { audience: ask.audience, scopes: ask.scopes, ttlSeconds: ask.ttlSeconds, bindToCertificate: ask.bindToCertificate };
  // Warm-up: JIT, statement cache.
  for (let i = 0; i < 50; i++) await broker.tokens.issueToken({ requestId: `bench-warm-${i}`, peer }, request);
  const deadline = performance.now() + seconds * 1000;
  let calls = 0;
  const startedAt = performance.now();
  const cpuBefore = process.cpuUsage();
  const mainBefore = mainThreadCpuMs();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (calls < MAX_IN_PROCESS_CALLS && performance.now() < deadline) {
        calls++;
        await broker.tokens.issueToken({ requestId: `bench-${calls}`, peer }, request);
      }
    }),
  );
  const elapsedMs = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    perSecond: (calls / elapsedMs) * 1000,
    calls,
    mainCpuMs: (mainThreadCpuMs() - mainBefore) / calls,
    processCpuMs: (cpu.user + cpu.system) / 1000 / calls,
  };
}
