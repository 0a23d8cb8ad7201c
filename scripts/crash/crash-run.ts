/**
 * The crash-consistency run (issue 7, item 2): `credbroker serve` as a child on a fresh state,
 * a bounded issuance loop against it (operator join tokens and enrollments, renewals, operator
 * issuance, access tokens, revocations by owners and operators), SIGKILL at random points and a
 * restart on the same state each time, then a clean SIGTERM stop and the checks of
 * crash-checks.ts on the store against what the clients were told.
 *
 * A kill point is "after a random number of further successful calls" (drawn from a seeded
 * generator), optionally plus a random delay: with several workers in flight, the other calls
 * are then at arbitrary stages (signing, inside a transaction, committing, replying). Errors
 * are sorted by status into those of calls that overlapped an outage and those made while the
 * broker was up (which must not happen).
 */
import { EventEmitter, once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { unary, type BrokerClients } from '../../src/agent/index.js';
import { BLUR, IMPORT, type ClientIdentity } from '../../test/e2e/harness.js';
import { BrokerProcess, type BrokerExit } from './broker-process.js';
import { clientsFor, enrollWith, prepareBrokerState, renewWith, withFreshKey, type BrokerState } from './broker-state.js';
import { ClientLedger, checkStore, type StoreCheck } from './crash-checks.js';

/** Options of {@link runCrash}. */
export interface CrashRunOptions {
  /** SIGKILLs (each followed by a restart on the same state). */
  readonly kills: number;
  /** Concurrent client loops; default 8. */
  readonly workers?: number;
  /** Successful calls between two kills, drawn uniformly from [min, max]; default [10, 80]. */
  readonly callsBetweenKills?: readonly [number, number];
  /** Up to this many ms more before each kill (drawn uniformly); default 0. */
  readonly maxDelayMs?: number;
  /** Seed of the kill points and of the operation mix; default random. */
  readonly seed?: number;
  /** Progress lines; default none. */
  readonly log?: (line: string) => void;
}

/** Count of calls by outcome or status name. */
export type Counts = Record<string, number>;

/** What a crash run did and found. */
export interface CrashReport {
  readonly seed: number;
  readonly kills: number;
  readonly calls: number;
  readonly succeeded: Counts;
  /** Errors of calls that overlapped an outage (in flight at the kill, or sent to a dead broker), by status. */
  readonly outageErrors: Counts;
  /** Errors while the broker was up, by status: must be empty. */
  readonly servingErrors: Counts;
  readonly servingErrorSamples: readonly string[];
  /** One call to the dead address per outage: status and ms until it failed. */
  readonly probes: readonly { readonly status: string; readonly ms: number }[];
  /** From SIGKILL to the new process listening, ms. */
  readonly restartMs: readonly number[];
  /** Calls in flight at each kill. */
  readonly inFlightAtKill: readonly number[];
  /** How the last broker stopped on SIGTERM (code 0 expected). */
  readonly finalExit: BrokerExit;
  readonly check: StoreCheck;
  readonly durationMs: number;
}

/** Longest wait for the load to make its calls before a kill: a stalled load fails the run. */
const LOAD_STALL_MS = 60_000;
/** Errors while serving after which the run stops (they are reported, not retried forever). */
const MAX_SERVING_ERRORS = 50;

/** A small seeded generator (mulberry32) for kill points and the operation mix. */
export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The gRPC status name of an error ('Error' for anything else). */
export function statusName(error: unknown): string {
  const code = (error as Partial<grpc.ServiceError> | null)?.code;
  return typeof code === 'number' ? grpc.status[code] : 'Error';
}

function bump(counts: Counts, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/**
 * Runs the crash loop on a fresh state and checks the store; the state is removed afterwards.
 * @throws Error when the broker does not restart or the load stalls (with the broker's stderr)
 */
export async function runCrash(options: CrashRunOptions): Promise<CrashReport> {
  const started = performance.now();
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = seededUniform(seed);
  const [minCalls, maxCalls] = options.callsBetweenKills ?? [10, 80];
  const log = options.log ?? (() => undefined);
  const state = await prepareBrokerState();
  try {
    return await crashLoop(state, { ...options, seed, random, minCalls, maxCalls, log, started });
  } finally {
    await state.remove();
  }
}

interface LoopSettings extends CrashRunOptions {
  readonly seed: number;
  readonly random: () => number;
  readonly minCalls: number;
  readonly maxCalls: number;
  readonly log: (line: string) => void;
  readonly started: number;
}

async function crashLoop(state: BrokerState, settings: LoopSettings): Promise<CrashReport> {
  const { random, log } = settings;
  const ledger = new ClientLedger();
  const succeeded: Counts = {};
  const outageErrors: Counts = {};
  const servingErrors: Counts = {};
  const servingErrorSamples: string[] = [];
  const probes: { status: string; ms: number }[] = [];
  const restartMs: number[] = [];
  const inFlightAtKill: number[] = [];
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  let broker: BrokerProcess | null = await BrokerProcess.start(state.configPath);
  let generation = 0;
  let calls = 0;
  let successes = 0;
  let inFlight = 0;
  let servingErrorCount = 0;
  /** Set when the run ends (or too many errors while serving); read by the workers. */
  const run = { stopping: false };
  log(`broker started (pid ${broker.pid}) on ${broker.address}; seed ${settings.seed}`);

  /** Resolves with the live broker's generation and address, or null when the run is stopping. */
  const live = async (): Promise<{ generation: number; address: string } | null> => {
    while (!run.stopping) {
      if (broker !== null) return { generation, address: broker.address };
      await once(changes, 'up');
    }
    return null;
  };

  /** One call: counted, sorted by outcome; null when it failed. */
  const attempt = async <T>(op: string, callGeneration: number, call: () => Promise<T>): Promise<T | null> => {
    calls++;
    inFlight++;
    try {
      const result = await call();
      successes++;
      bump(succeeded, op);
      changes.emit('success');
      return result;
    } catch (error) {
      const status = statusName(error);
      if (callGeneration !== generation || broker === null) {
        bump(outageErrors, status);
      } else {
        bump(servingErrors, `${op} ${status}`);
        servingErrorCount++;
        if (servingErrorSamples.length < 10) servingErrorSamples.push(`${op}: ${status} ${(error as Error).message}`);
        if (servingErrorCount >= MAX_SERVING_ERRORS) run.stopping = true;
        changes.emit('success'); // wakes the supervisor so that it notices `run.stopping`
      }
      return null;
    } finally {
      inFlight--;
    }
  };

  const worker = async (): Promise<void> => {
    let identity: ClientIdentity | null = null;
    /** Earlier certificates of this worker (valid, not revoked): revoked by the worker itself. */
    const ownOld: string[] = [];
    /** Certificates the operator issued: revoked by the operator. */
    const issued: string[] = [];
    const opened = new Map<string, BrokerClients>();
    let openedGeneration = -1;
    const clients = (target: { generation: number; address: string }, who: ClientIdentity | null): BrokerClients => {
      if (openedGeneration !== target.generation) {
        for (const c of opened.values()) c.close();
        opened.clear();
        openedGeneration = target.generation;
      }
      const key = who?.serial ?? 'anonymous';
      let found = opened.get(key);
      if (found === undefined) {
        found = clientsFor(target.address, state.rootPem, who);
        opened.set(key, found);
      }
      return found;
    };
    try {
      while (!run.stopping) {
        const target = await live();
        if (target === null) return;
        const g = target.generation;
        const draw = random();
        const ops = clients(target, state.operator);
        if (identity === null || draw < 0.15) {
          const created = await attempt('CreateJoinToken', g, () =>
            unary<{ joinToken: string; tokenId: string }>(ops.administration, 'CreateJoinToken', { spiffeId: IMPORT, ttlSeconds: 0 }),
          );
          if (created === null) continue;
          ledger.joinTokens.set(created.tokenId, '');
          const enrolled = await attempt('Enroll', g, () => enrollWith(clients(target, null), created.joinToken));
          if (enrolled === null) continue; // the token is never retried: whether it was redeemed is for the checks
          ledger.serials.push(enrolled.serial);
          ledger.joinTokens.set(created.tokenId, enrolled.serial);
          if (identity !== null) ownOld.push(identity.serial);
          identity = enrolled;
        } else if (draw < 0.5) {
          const renewed = await attempt('Renew', g, () => renewWith(clients(target, identity)));
          if (renewed === null) continue;
          ledger.serials.push(renewed.serial);
          ownOld.push(identity.serial);
          identity = renewed;
        } else if (draw < 0.75) {
          const token = await attempt('IssueToken', g, () =>
            unary<{ tokenId: string }>(clients(target, identity).tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'], ttlSeconds: 0 }),
          );
          if (token !== null) ledger.accessTokens.push(token.tokenId);
        } else if (draw < 0.85 || (ownOld.length === 0 && issued.length === 0)) {
          const certificate = await attempt('Issue', g, () =>
            withFreshKey((csr) => unary(ops.certificates, 'Issue', { csr, spiffeId: BLUR, ttlSeconds: 0 })),
          );
          if (certificate === null) continue;
          ledger.serials.push(certificate.serial);
          issued.push(certificate.serial);
        } else {
          // A revocation whose reply was lost may have committed: the serial is never tried again.
          const byOwner = ownOld.length > 0 && (issued.length === 0 || draw < 0.93);
          const serial = (byOwner ? ownOld : issued).shift()!;
          const caller = byOwner ? clients(target, identity) : ops;
          const revoked = await attempt(byOwner ? 'Revoke (owner)' : 'Revoke (operator)', g, () =>
            unary(caller.certificates, 'Revoke', { serial, reason: byOwner ? 'REVOCATION_REASON_SUPERSEDED' : 'REVOCATION_REASON_CESSATION_OF_OPERATION' }),
          );
          if (revoked !== null) ledger.revoked.push(serial);
        }
      }
    } finally {
      for (const c of opened.values()) c.close();
    }
  };

  /** Resolves once `count` more calls succeeded. @throws when the load stalls */
  const awaitSuccesses = async (count: number): Promise<void> => {
    const target = successes + count;
    const deadline = performance.now() + LOAD_STALL_MS;
    while (successes < target && !run.stopping) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`the load stalled: ${successes} of ${target} calls succeeded within ${LOAD_STALL_MS} ms`);
      await once(changes, 'success', { signal: AbortSignal.timeout(Math.ceil(left)) }).catch(() => undefined);
    }
  };

  const workers = Array.from({ length: settings.workers ?? 8 }, () => worker());
  let finalExit: BrokerExit = { code: null, signal: null };
  try {
    for (let kill = 1; kill <= settings.kills && !run.stopping; kill++) {
      const between = settings.minCalls + Math.floor(random() * (settings.maxCalls - settings.minCalls + 1));
      await awaitSuccesses(between);
      if ((settings.maxDelayMs ?? 0) > 0) await delay(Math.floor(random() * (settings.maxDelayMs ?? 0)));
      const victim: BrokerProcess = broker;
      broker = null;
      generation++;
      inFlightAtKill.push(inFlight);
      const killedAt = performance.now();
      await victim.kill();
      const probeStart = performance.now();
      const probeClients = clientsFor(victim.address, state.rootPem, null);
      const probe = await unary(probeClients.enrollment, 'GetTrustBundle', {}, 10_000).then(
        () => 'OK',
        (error: unknown) => statusName(error),
      );
      probeClients.close();
      probes.push({ status: probe, ms: performance.now() - probeStart });
      const next = await BrokerProcess.start(state.configPath);
      restartMs.push(performance.now() - killedAt);
      broker = next;
      changes.emit('up');
      log(
        `kill ${kill}/${settings.kills}: pid ${victim.pid} SIGKILLed after ${between} more calls (${inFlightAtKill.at(-1)} in flight); dead address answered ${probe}; restarted as pid ${next.pid} in ${Math.round(restartMs.at(-1)!)} ms; ${calls} calls so far`,
      );
    }
    // The last incarnation must work too before it is stopped.
    await awaitSuccesses(Math.max(settings.minCalls, 20));
  } finally {
    run.stopping = true;
    changes.emit('up');
    await Promise.all(workers);
    if (broker !== null) finalExit = await broker.stop();
  }
  log(`load stopped after ${calls} calls; last broker stopped with SIGTERM (exit ${String(finalExit.code)}); checking the store`);
  const check = await checkStore(state.dbPath, state.auditKeyPath, ledger);
  return {
    seed: settings.seed,
    kills: restartMs.length,
    calls,
    succeeded,
    outageErrors,
    servingErrors,
    servingErrorSamples,
    probes,
    restartMs,
    inFlightAtKill,
    finalExit,
    check,
    durationMs: performance.now() - settings.started,
  };
}

/** Percentile of `values` (nearest rank), 0 when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function countsLine(counts: Counts): string {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  return entries.length === 0 ? 'none' : entries.map(([key, n]) => `${key} ${n}`).join(', ');
}

/** The summary printed by `npm run crash`. */
export function formatCrashReport(report: CrashReport): string {
  const probeStatuses: Counts = {};
  for (const probe of report.probes) bump(probeStatuses, probe.status);
  const f = report.check.figures;
  return [
    'crash consistency (issue 7, item 2):',
    `  seed: ${report.seed}`,
    `  kills survived: ${report.kills} (SIGKILL, restart on the same state each time)`,
    `  restart (kill → listening): p50 ${Math.round(percentile(report.restartMs, 50))} ms, max ${Math.round(percentile(report.restartMs, 100))} ms`,
    `  calls: ${report.calls}; succeeded: ${countsLine(report.succeeded)}`,
    `  calls in flight at the kills: ${report.inFlightAtKill.join(' ')}`,
    `  errors during the outages: ${countsLine(report.outageErrors)}`,
    `  dead-address probes: ${countsLine(probeStatuses)}, p99 ${percentile(report.probes.map((p) => p.ms), 99).toFixed(1)} ms`,
    `  errors while serving (must be none): ${countsLine(report.servingErrors)}`,
    ...report.servingErrorSamples.map((sample) => `    ${sample}`),
    `  final stop: SIGTERM → exit ${String(report.finalExit.code)}${report.finalExit.signal === null ? '' : ` (${report.finalExit.signal})`}`,
    `  store: ${f.certificates} certificates (${f.revoked} revoked), ${f.joinTokens} join tokens (${f.joinTokensRedeemed} redeemed), ${f.accessTokensAudited} access tokens audited, ${f.auditEntries} audit entries, ${f.checkpoints} checkpoints`,
    `  client replies checked: ${f.clientSerials} serials`,
    `  inconsistencies (must be 0): ${report.check.problems.length}`,
    ...report.check.problems.map((problem) => `    ${problem}`),
    `  time: ${(report.durationMs / 1000).toFixed(1)} s`,
  ].join('\n');
}
