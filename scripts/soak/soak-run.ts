/**
 * The soak (issue 7, item 6): `credbroker serve` as a child on 127.0.0.1 (a fresh CA on a temp
 * SoftHSM token), a steady open-loop rate of Renew and IssueToken calls from a pool of service
 * identities, plus ServiceCredentials agents with short certificates that renew by themselves
 * (and keep their Rotation/Watch streams open) and fetch access tokens. The broker's memory, heap
 * and event-loop lag come from its own /metrics (prom-client's process and Node.js metrics), so
 * the load driver's memory does not blur them.
 *
 * Everything is bounded: the run by its duration, calls in flight by a cap (calls the cap
 * holds back are counted as `behind`, an error), the drain at the end by a timeout.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { unary, ServiceCredentials, type BrokerClients } from '../../src/agent/index.js';
import { Secret } from '../../src/core/index.js';
import { IMPORT, type ClientIdentity } from '../../test/e2e/harness.js';
import { parseExposition } from '../../test/helpers/prometheus-text.js';
import { BrokerProcess, type BrokerExit } from '../crash/broker-process.js';
import { clientsFor, enrollWith, prepareBrokerState, renewWith } from '../crash/broker-state.js';
import { ClientLedger, checkStore, type StoreCheck } from '../crash/crash-checks.js';
import { percentile, statusName, type Counts } from '../crash/crash-run.js';

/** Options of {@link runSoak}. */
export interface SoakOptions {
  /** Length of the steady load, ms. */
  readonly durationMs: number;
  /** Calls per second (Renew and IssueToken, half each). */
  readonly rate: number;
  /** ServiceCredentials agents; default 20. */
  readonly agents?: number;
  /** The agents' certificate TTL in seconds (they renew at ¾ of lifetime incl. the 60 s backdate); default 30. */
  readonly agentTtlSeconds?: number;
  /** Service identities the steady load uses; default 16. */
  readonly identities?: number;
  /** Most calls in flight; default 256. */
  readonly maxInFlight?: number;
  /** How often memory is sampled and a progress line printed, ms; default 5000. */
  readonly sampleEveryMs?: number;
  readonly log?: (line: string) => void;
}

/** One reading of the broker's /metrics. */
export interface BrokerSample {
  readonly atMs: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  /** prom-client's event-loop lag p99 (since its last reset), ms. */
  readonly eventLoopLagP99Ms: number;
}

/** What a soak did and measured. */
export interface SoakReport {
  readonly durationMs: number;
  readonly rate: number;
  readonly calls: Counts;
  /** Errors by `rpc status`, plus agent failures and calls held back by the in-flight cap: must be empty. */
  readonly errors: Counts;
  readonly latencyMs: Record<string, { readonly p50: number; readonly p99: number; readonly max: number }>;
  readonly agentRenewals: number;
  readonly agentTokens: number;
  readonly samples: readonly BrokerSample[];
  /** RSS after setup, before any load. */
  readonly rssStartBytes: number;
  /** RSS after the first quarter of the run (warm: JIT, caches, pools). */
  readonly rssWarmBytes: number;
  readonly rssEndBytes: number;
  readonly heapUsedEndBytes: number;
  readonly brokerEventLoopLagP99Ms: number;
  /** The driver's own event-loop delay p99 (a busy driver would skew latencies), ms. */
  readonly driverEventLoopLagP99Ms: number;
  readonly finalExit: BrokerExit;
  readonly check: StoreCheck;
}

/** Longest the drain of in-flight calls at the end may take. */
const DRAIN_TIMEOUT_MS = 30_000;
/** Latencies kept per RPC (a 5-minute run at 200/s is 30,000 each). */
const MAX_LATENCIES = 1_000_000;

async function sampleBroker(metricsUrl: string, startedAt: number): Promise<BrokerSample> {
  const samples = parseExposition(await (await fetch(metricsUrl)).text());
  const value = (name: string): number => samples.find((s) => s.name === name)?.value ?? Number.NaN;
  return {
    atMs: performance.now() - startedAt,
    rssBytes: value('process_resident_memory_bytes'),
    heapUsedBytes: value('nodejs_heap_size_used_bytes'),
    eventLoopLagP99Ms: value('nodejs_eventloop_lag_p99_seconds') * 1000,
  };
}

/** A load identity and its channel; the channel is closed once replaced and no call uses it. */
interface Slot {
  readonly identity: ClientIdentity;
  readonly clients: BrokerClients;
  users: number;
  retired: boolean;
}

function bump(counts: Counts, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** Runs the soak on a fresh state (removed afterwards). @throws when the broker does not start */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => undefined);
  const state = await prepareBrokerState();
  const broker = await BrokerProcess.start(state.configPath);
  const opened: BrokerClients[] = [];
  const agents: ServiceCredentials[] = [];
  const slots: Slot[] = [];
  let finalExit: BrokerExit = { code: null, signal: null };
  try {
    const ops = clientsFor(broker.address, state.rootPem, state.operator);
    opened.push(ops);
    const joinToken = async (): Promise<string> =>
      (await unary<{ joinToken: string }>(ops.administration, 'CreateJoinToken', { spiffeId: IMPORT, ttlSeconds: 0 })).joinToken;
    const anonymous = clientsFor(broker.address, state.rootPem, null);
    opened.push(anonymous);
    const ledger = new ClientLedger();
    for (let i = 0; i < (options.identities ?? 16); i++) {
      const identity = await enrollWith(anonymous, await joinToken());
      ledger.serials.push(identity.serial);
      slots.push({ identity, clients: clientsFor(broker.address, state.rootPem, identity), users: 0, retired: false });
    }
    const errors: Counts = {};
    let agentRenewals = 0;
    let agentTokens = 0;
    const ttlSeconds = options.agentTtlSeconds ?? 30;
    for (let i = 0; i < (options.agents ?? 20); i++) {
      const credentials = await ServiceCredentials.start({
        broker: { address: broker.address, serverName: 'localhost', trustBundlePem: state.rootPem },
        joinToken: Secret.from(await joinToken()),
        ttlSeconds,
        renewal: { renewAtFraction: 0.75, jitterFraction: 0.05 },
      });
      ledger.serials.push(credentials.identity.serial);
      credentials.events.on('renewed', (identity: { readonly serial: string }) => {
        agentRenewals++;
        ledger.serials.push(identity.serial);
      });
      credentials.events.on('failure', (_error: unknown, stage: string) => {
        bump(errors, `agent ${stage}`);
      });
      agents.push(credentials);
    }

    const startedAt = performance.now();
    const samples: BrokerSample[] = [await sampleBroker(broker.metricsUrl, startedAt)];
    const rssStartBytes = samples[0]!.rssBytes;
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const calls: Counts = {};
    const latencies: Record<string, number[]> = { Renew: [], IssueToken: [], 'agent token': [] };
    const maxInFlight = options.maxInFlight ?? 256;
    let inFlight = 0;
    let sent = 0;
    let slot = 0;
    const pending = new Set<Promise<void>>();
    const track = (rpc: string, call: () => Promise<void>, slotUsed?: Slot): void => {
      inFlight++;
      if (slotUsed !== undefined) slotUsed.users++;
      bump(calls, rpc);
      const begun = performance.now();
      const promise = call().then(
        () => {
          const list = latencies[rpc]!;
          if (list.length < MAX_LATENCIES) list.push(performance.now() - begun);
        },
        (error: unknown) => {
          bump(errors, `${rpc} ${statusName(error)}`);
        },
      );
      const settled = promise.finally(() => {
        inFlight--;
        if (slotUsed !== undefined && --slotUsed.users === 0 && slotUsed.retired) slotUsed.clients.close();
        pending.delete(settled);
      });
      pending.add(settled);
    };
    const launch = (): void => {
      const index = slot++ % slots.length;
      const target = slots[index]!;
      if (sent % 2 === 0) {
        track('Renew', async () => {
          const renewed = await renewWith(target.clients);
          ledger.serials.push(renewed.serial);
          // Concurrent renewals of one slot: the last reply wins; the others stay valid and unused.
          if (slots[index] === target) {
            slots[index] = { identity: renewed, clients: clientsFor(broker.address, state.rootPem, renewed), users: 0, retired: false };
            target.retired = true;
          }
        }, target);
      } else if (sent % 10 === 1) {
        // Access tokens through the agents' cache (fetched again at ¾ of their lifetime, and after each renewal).
        const agent = agents[Math.floor(sent / 10) % agents.length];
        if (agent !== undefined) {
          track('agent token', async () => {
            await agent.token('storage.source', ['media.source.write']);
            agentTokens++;
          });
        }
      } else {
        track('IssueToken', async () => {
          const token = await unary<{ tokenId: string }>(target.clients.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'] });
          ledger.accessTokens.push(token.tokenId);
        }, target);
      }
      sent++;
    };

    let nextSampleAt = options.sampleEveryMs ?? 5000;
    const warm: { rssBytes: number | null } = { rssBytes: null };
    await new Promise<void>((resolve) => {
      const ticker = setInterval(() => {
        const elapsed = performance.now() - startedAt;
        const due = Math.floor((Math.min(elapsed, options.durationMs) / 1000) * options.rate);
        while (sent < due) {
          if (inFlight >= maxInFlight) {
            bump(errors, 'behind (in-flight cap)');
            sent++;
            continue;
          }
          launch();
        }
        if (elapsed >= nextSampleAt || elapsed >= options.durationMs) {
          nextSampleAt += options.sampleEveryMs ?? 5000;
          void sampleBroker(broker.metricsUrl, startedAt).then((sample) => {
            samples.push(sample);
            if (warm.rssBytes === null && sample.atMs >= options.durationMs / 4) warm.rssBytes = sample.rssBytes;
            const errorCount = Object.values(errors).reduce((sum, n) => sum + n, 0);
            log(
              `${(sample.atMs / 1000).toFixed(0)} s: ${sent} calls, ${errorCount} errors, ${inFlight} in flight, ${agentRenewals} agent renewals; broker RSS ${mb(sample.rssBytes)}, heap ${mb(sample.heapUsedBytes)}, event-loop lag p99 ${sample.eventLoopLagP99Ms.toFixed(1)} ms`,
            );
          });
        }
        if (elapsed >= options.durationMs) {
          clearInterval(ticker);
          resolve();
        }
      }, 10);
    });
    const drained = Promise.all(pending);
    const drainTimer = new Promise<void>((resolve) => setTimeout(resolve, DRAIN_TIMEOUT_MS).unref());
    await Promise.race([drained, drainTimer]);
    if (inFlight > 0) bump(errors, `undrained after ${DRAIN_TIMEOUT_MS} ms`);
    loopDelay.disable();
    const end = await sampleBroker(broker.metricsUrl, startedAt);
    samples.push(end);
    await Promise.all(agents.map((agent) => agent.close()));
    agents.length = 0;
    finalExit = await broker.stop();
    const check = await checkStore(state.dbPath, state.auditKeyPath, ledger);
    const latencyMs: SoakReport['latencyMs'] = {};
    for (const [rpc, list] of Object.entries(latencies)) latencyMs[rpc] = { p50: percentile(list, 50), p99: percentile(list, 99), max: percentile(list, 100) };
    return {
      durationMs: options.durationMs,
      rate: options.rate,
      calls,
      errors,
      latencyMs,
      agentRenewals,
      agentTokens,
      samples,
      rssStartBytes,
      rssWarmBytes: warm.rssBytes ?? rssStartBytes,
      rssEndBytes: end.rssBytes,
      heapUsedEndBytes: end.heapUsedBytes,
      brokerEventLoopLagP99Ms: Math.max(...samples.map((s) => s.eventLoopLagP99Ms).filter((v) => Number.isFinite(v))),
      driverEventLoopLagP99Ms: loopDelay.percentile(99) / 1e6,
      finalExit,
      check,
    };
  } finally {
    await Promise.all(agents.map((agent) => agent.close().catch(() => undefined)));
    for (const clients of opened) clients.close();
    for (const slot of slots) slot.clients.close();
    if (finalExit.code === null && finalExit.signal === null) await broker.kill();
    await state.remove();
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** The summary printed by `npm run soak`. */
export function formatSoakReport(report: SoakReport): string {
  const errors = Object.entries(report.errors);
  return [
    'soak (issue 7, item 6):',
    `  ${(report.durationMs / 1000).toFixed(0)} s at ${report.rate} calls/s on 127.0.0.1: ${Object.entries(report.calls).map(([rpc, n]) => `${rpc} ${n}`).join(', ')}; agents renewed ${report.agentRenewals} times`,
    `  errors (must be 0): ${errors.length === 0 ? '0' : errors.map(([key, n]) => `${key} ${n}`).join(', ')}`,
    ...Object.entries(report.latencyMs).map(([rpc, l]) => `  ${rpc} latency: p50 ${l.p50.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms, max ${l.max.toFixed(1)} ms`),
    `  broker RSS: start ${mb(report.rssStartBytes)}, warm ${mb(report.rssWarmBytes)}, end ${mb(report.rssEndBytes)}; growth after warm-up ${mb(report.rssEndBytes - report.rssWarmBytes)} (from start ${mb(report.rssEndBytes - report.rssStartBytes)})`,
    `  broker heap used at the end: ${mb(report.heapUsedEndBytes)}; broker event-loop lag p99 (worst sample) ${report.brokerEventLoopLagP99Ms.toFixed(1)} ms; driver's ${report.driverEventLoopLagP99Ms.toFixed(1)} ms`,
    `  final stop: SIGTERM → exit ${String(report.finalExit.code)}`,
    `  store: ${report.check.figures.certificates} certificates, ${report.check.figures.auditEntries} audit entries; inconsistencies (must be 0): ${report.check.problems.length}`,
    ...report.check.problems.slice(0, 20).map((problem) => `    ${problem}`),
  ].join('\n');
}
