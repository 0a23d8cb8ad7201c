/**
 * Issuance benchmark (issue 4, "Performance"), in one run, every client in separate processes:
 *
 * (a) the transport's ceiling: a grpc-js unary echo over mutual TLS (throwaway P-256 CA) at
 *     concurrency 16 — what grpc-js does on this machine when the handler does nothing;
 * (b) `Certificates/Renew` end to end on a real broker (ceremony on a temp SoftHSM token, SQLite
 *     store and audit on, as test/e2e/harness.ts starts it) at each concurrency asked: certs/s,
 *     client p50/p99, the broker's event-loop lag p99, its CPU, and time per stage;
 * (c) `cfssl serve` (software CA key, no store) signing the same kind of CSRs at concurrency 16,
 *     if cfssl is on PATH (Debian: golang-cfssl); never installed from here.
 *
 * Every call carries a fresh key's CSR, generated before any timing. Targets at c16 are checked
 * against ratios measured in the same run.
 *
 *   npm run bench -- issue [--seconds 6] [--concurrency 1,16,64] [--clients 2]
 *
 * With `--store postgres` it measures instead the stores against each other, in one run: Renew
 * certs/s on a broker with SQLite, on one broker with PostgreSQL (a durable cluster made in a temp
 * folder by test/helpers/postgres.ts: fsync and synchronous commit on, like SQLite's FULL), and on
 * two brokers sharing it (the second a `credbroker serve` process on the same config and SoftHSM
 * token; client processes split between the two: use an even --clients).
 *
 *   npm run bench -- issue --store postgres [--seconds 6] [--concurrency 16,64] [--clients 4]
 */
import { performance, monitorEventLoopDelay, type EventLoopUtilization } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { X509Certificate, createHash, generateKeyPairSync } from 'node:crypto';
import { checkCsr } from '../../src/pki/index.js';
import { brokerConfigSchema, loadConfigFile } from '../../src/config/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { IMPORT, startE2eBroker, type ClientIdentity, type E2eBroker } from '../../test/e2e/harness.js';
import { CLI_PATH } from '../../test/helpers/cli.js';
import { startTestPostgres, type TestPostgres } from '../../test/helpers/postgres.js';
import { buildCsr } from '../../test/helpers/csr-builder.js';
import { createThrowawayCa } from './issue-ca.js';
import { findOnPath, startCfssl, type CfsslServer } from './issue-cfssl.js';
import { ClientPool } from './issue-client-pool.js';
import { startEchoServer, type EchoServer } from './issue-echo.js';
import type { RunResult, Target } from './issue-protocol.js';
import { StageProbe, type StageTotals } from './issue-stages.js';

interface Options {
  /** Measured window per run, s. */
  seconds: number;
  /** Broker Renew concurrency levels. */
  concurrency: number[];
  /** Client processes. */
  clients: number;
  /** `sqlite` (default): the issue benchmark; `postgres`: the stores compared (see the module comment). */
  store: 'sqlite' | 'postgres';
}

function parseOptions(args: string[]): Options {
  const options: Options = { seconds: 6, concurrency: [1, 16, 64], clients: 2, store: 'sqlite' };
  for (let i = 0; i < args.length; i++) {
    const value = args[i + 1] ?? '';
    switch (args[i]) {
      case '--seconds':
        options.seconds = Math.min(60, Math.max(0.5, Number(value) || 6));
        i++;
        break;
      case '--concurrency':
        options.concurrency = [...new Set(value.split(',').map(Number).filter((c) => Number.isInteger(c) && c >= 1 && c <= 512))];
        if (options.concurrency.length === 0) throw new Error(`--concurrency: expected a list of integers 1..512, got "${value}"`);
        i++;
        break;
      case '--clients':
        options.clients = Math.min(8, Math.max(1, Math.floor(Number(value) || 2)));
        i++;
        break;
      case '--store':
        if (value !== 'sqlite' && value !== 'postgres') throw new Error(`--store: expected sqlite or postgres, got "${value}"`);
        options.store = value;
        i++;
        break;
      default:
        throw new Error(`unknown option ${args[i] ?? ''} (usage: npm run bench -- issue [--seconds N] [--concurrency 1,16,64] [--clients K] [--store sqlite|postgres])`);
    }
  }
  return options;
}

/** Concurrency of (a) and (c), and of the targets. */
const REFERENCE_CONCURRENCY = 16;
/** Issue 4's targets at c16. */
const TARGET_CERTS_PER_SECOND = 3_000;
const TARGET_SHARE_OF_CEILING = 0.45;
const TARGET_LAG_P99_MS = 20;
/** The echo payload: about a CSR's size. */
const ECHO_PAYLOAD_BYTES = 256;
/** Extra CSRs generated over the expected consumption. */
const POOL_MARGIN = 1.3;
/** The whole benchmark stops by itself after this long, whatever happens. */
const HARD_LIMIT_MS = 10 * 60 * 1000;
const POOL_TIMEOUT_MS = 150_000;
const CONNECT_TIMEOUT_MS = 30_000;

/** A run's figures as the clients saw them, plus what the serving process saw. */
interface Measured {
  readonly concurrency: number;
  readonly perSecond: number;
  readonly errors: number;
  readonly firstError: string;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  /** Shortest window measured by a client with calls in flight, s (less than asked: pool ran out). */
  readonly windowS: number;
  readonly poolExhausted: boolean;
  /** CPU of the client processes over the window, in cores. */
  readonly clientCores: number;
  /** CPU of the serving process (this one, or cfssl) over the window, in cores. */
  readonly serverCores: number;
  /** This process's event-loop delay over the window (NaN when another process serves), ms. */
  readonly lagP99Ms: number;
  readonly lagMaxMs: number;
  /** Share of the window this process's event loop was busy (NaN when another process serves). */
  readonly loopBusy: number;
  /** CPU of this process's main thread over the window, in cores (NaN when another process serves). */
  readonly mainCores: number;
  readonly stages: StageTotals | null;
}

/** CPU time of this process's main thread (Linux /proc), ms; NaN elsewhere. */
function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}
/** USER_HZ of Linux /proc times (100 on every mainstream architecture). */
const CLOCK_TICKS_PER_SECOND = 100;

/** Splits `concurrency` calls in flight over `k` processes: 16 over 2 → 8 + 8; 1 over 2 → 1 + 0. */
function split(concurrency: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(concurrency / k) + (i < concurrency % k ? 1 : 0));
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

const fmt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const ms = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const pct = (n: number): string => (Number.isFinite(n) ? `${(n * 100).toFixed(0)} %` : '—');
const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Who serves a measurement: this process by default (echo, broker), or another one (cfssl). */
interface ServerSide {
  /** Stage timing of the broker, if it is the server. */
  readonly probe?: StageProbe;
  /** CPU time of another serving process, ms; absent: this process (and its loop lag is measured). */
  readonly cpuMs?: () => number;
}

/** Runs one measurement: warm-up, then a window of `seconds` with `concurrency` calls in flight. */
async function measure(pool: ClientPool, concurrency: number, options: Options, side: ServerSide = {}): Promise<Measured> {
  const warmupMs = Math.min(1000, Math.max(300, options.seconds * 250));
  const durationMs = options.seconds * 1000;
  const lanes = split(concurrency, pool.size);
  const inProcess = side.cpuMs === undefined;
  const cpuMs =
    side.cpuMs ??
    ((): number => {
      const used = process.cpuUsage();
      return (used.user + used.system) / 1000;
    });
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  const server: { cpuMs: number; startedAt: number; cores: number; stages: StageTotals | null; stopped: boolean; elu: EventLoopUtilization | null; loopBusy: number; mainCpuMs: number; mainCores: number } = { mainCpuMs: Number.NaN, mainCores: Number.NaN, cpuMs: Number.NaN, startedAt: Number.NaN, cores: Number.NaN, stages: null, stopped: false, elu: null, loopBusy: Number.NaN };
  const stopServerSide = (): void => {
    if (Number.isNaN(server.startedAt) || server.stopped) return;
    server.stopped = true;
    histogram.disable();
    server.cores = (cpuMs() - server.cpuMs) / (performance.now() - server.startedAt);
    if (inProcess && server.elu !== null) server.loopBusy = performance.eventLoopUtilization(server.elu).utilization;
    if (inProcess) server.mainCores = (mainThreadCpuMs() - server.mainCpuMs) / (performance.now() - server.startedAt);
    server.stages = side.probe?.stop() ?? null;
  };
  const startTimer = setTimeout(() => {
    if (inProcess) {
      histogram.reset();
      histogram.enable();
    }
    server.cpuMs = cpuMs();
    server.elu = performance.eventLoopUtilization();
    server.mainCpuMs = mainThreadCpuMs();
    server.startedAt = performance.now();
    side.probe?.start();
  }, warmupMs);
  const stopTimer = setTimeout(stopServerSide, warmupMs + durationMs);
  const startAtEpochMs = Date.now() + warmupMs;
  let results: RunResult[];
  try {
    const replies = await pool.all('run', (i) => ({ type: 'run', concurrency: lanes[i] ?? 0, startAtEpochMs, durationMs }), warmupMs + durationMs + 30_000);
    results = replies.map((reply) => reply.result);
  } finally {
    clearTimeout(startTimer);
    clearTimeout(stopTimer);
    stopServerSide();
    histogram.disable();
  }
  const active = results.filter((_, i) => (lanes[i] ?? 0) > 0);
  const all = new Float64Array(active.reduce((n, r) => n + r.latenciesMs.length, 0));
  let offset = 0;
  for (const r of active) {
    all.set(r.latenciesMs, offset);
    offset += r.latenciesMs.length;
  }
  all.sort();
  const sum = all.reduce((a, b) => a + b, 0);
  const firstError = results.find((r) => r.firstError !== '')?.firstError ?? '';
  const nsToMs = (ns: number): number => ns / 1e6;
  const measured = inProcess && histogram.count > 0;
  return {
    concurrency,
    perSecond: active.reduce((rate, r) => rate + (r.windowMs > 0 ? r.calls / (r.windowMs / 1000) : 0), 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    firstError,
    p50Ms: percentile(all, 0.5),
    p99Ms: percentile(all, 0.99),
    meanMs: all.length === 0 ? Number.NaN : sum / all.length,
    windowS: Math.min(...active.map((r) => r.windowMs)) / 1000,
    poolExhausted: results.some((r) => r.poolExhausted),
    clientCores: results.reduce((c, r) => c + r.cpuMs, 0) / durationMs,
    serverCores: server.cores,
    lagP99Ms: measured ? nsToMs(histogram.percentile(99)) : Number.NaN,
    lagMaxMs: measured ? nsToMs(histogram.max) : Number.NaN,
    loopBusy: server.loopBusy,
    mainCores: server.mainCores,
    stages: server.stages,
  };
}

/** One progress line for a finished measurement. */
function progressLine(m: Measured, unit: string): string {
  const flags = [m.errors > 0 ? `${m.errors} errors (first: ${m.firstError})` : '', m.poolExhausted ? `CSR pool ran out: window ${m.windowS.toFixed(1)} s` : ''].filter((f) => f !== '');
  return `${fmt(m.perSecond)} ${unit}/s  p50 ${ms(m.p50Ms)} ms  p99 ${ms(m.p99Ms)} ms  loop lag p99 ${ms(m.lagP99Ms, 1)} ms (max ${ms(m.lagMaxMs, 1)}), loop busy ${pct(m.loopBusy)}, main thread ${ms(m.mainCores)} cores${flags.length > 0 ? `  [${flags.join('; ')}]` : ''}`;
}

/** Tops every client's CSR pool up for a run at `concurrency`, expecting at most `perSecond`. */
async function topUpPools(pool: ClientPool, concurrency: number, perSecond: number, options: Options, extra = 0): Promise<void> {
  const lanes = split(concurrency, pool.size);
  const seconds = options.seconds + 1;
  const wanted = lanes.map((n) => (n === 0 ? extra : Math.ceil((perSecond * seconds * POOL_MARGIN * n) / concurrency) + extra));
  const started = performance.now();
  const replies = await pool.all('pool', (i) => ({ type: 'pool', available: wanted[i] ?? 0 }), POOL_TIMEOUT_MS);
  const generated = replies.reduce((n, r) => n + r.generated, 0);
  if (generated > 0) {
    say(`    CSR pool: ${fmt(generated)} fresh P-256 keys + CSRs made in ${((performance.now() - started) / 1000).toFixed(1)} s (untimed), ${replies.map((r) => fmt(r.available)).join(' + ')} ready`);
  }
}

/** Mean per-Renew figures from a window's stage totals and the clients' mean latency. */
function stageRows(m: Measured): Map<string, number> {
  const rows = new Map<string, number>();
  const s = m.stages;
  if (s === null || s.renews === 0) return rows;
  const per = (value: number): number => value / s.renews;
  rows.set('service', per(s.renewMs));
  rows.set('sign', per(s.signMs));
  rows.set('store', per(s.storeMs));
  rows.set('audit', per(s.auditMs));
  rows.set('commit', per(s.transactionMs - s.storeMs - s.auditMs));
  rows.set('rest', per(s.renewMs - s.signMs - s.transactionMs));
  rows.set('outside', m.meanMs - per(s.renewMs));
  rows.set('checkpointSign', per(s.otherSignMs));
  rows.set('signsPer', per(s.signs));
  rows.set('transactionsPer', per(s.transactions));
  return rows;
}

/** checkCsr on one idle thread: a reference for the "rest" row. */
async function checkCsrAlone(): Promise<number> {
  const csrs = Array.from({ length: 64 }, () => buildCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
  for (const csr of csrs.slice(0, 8)) await checkCsr(csr);
  const deadline = performance.now() + 500;
  const started = performance.now();
  let count = 0;
  while (count < 20_000 && performance.now() < deadline) {
    await checkCsr(csrs[count % csrs.length]!);
    count++;
  }
  return (performance.now() - started) / count;
}

/** Renew's decision alone (no gRPC, TLS or client processes) at c16 for about a second. */
interface ServiceAlone {
  readonly perSecond: number;
  /** Main-thread CPU per call, ms. */
  readonly mainCpuMs: number;
  /** Process CPU (main thread + thread pool) per call, ms. */
  readonly processCpuMs: number;
}

/**
 * Calls BrokerService.renew in this process, as the gRPC handler does after the peer check,
 * with fresh CSRs made beforehand: the decision's own ceiling (CSR check, build, HSM sign,
 * store, audit), to set against (b) and see what the transport adds.
 */
async function renewInProcess(broker: E2eBroker, identity: ClientIdentity, seconds: number): Promise<ServiceAlone> {
  const certificate = new X509Certificate(identity.certificatePem);
  const peer = {
    spiffeId: IMPORT,
    serial: identity.serial,
    notBefore: new Date(certificate.validFrom),
    notAfter: new Date(certificate.validTo),
    spkiSha256: createHash('sha256').update(certificate.publicKey.export({ format: 'der', type: 'spki' })).digest('hex'),
    certificateSha256: createHash('sha256').update(certificate.raw).digest('hex'),
  };
  const count = Math.min(20_000, Math.max(500, Math.round(3_000 * seconds)));
  const csrs = Array.from({ length: count }, () => buildCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
  const deadline = performance.now() + seconds * 1000;
  let next = 0;
  const startedAt = performance.now();
  const cpuBefore = process.cpuUsage();
  const mainBefore = mainThreadCpuMs();
  await Promise.all(
    Array.from({ length: REFERENCE_CONCURRENCY }, async () => {
      while (next < csrs.length && performance.now() < deadline) {
        const csr = csrs[next++]!;
        await broker.broker.service.renew({ requestId: `bench-${next}`, peer }, { csr, ttlSeconds: 0 });
      }
    }),
  );
  const elapsed = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  return { perSecond: (next / elapsed) * 1000, mainCpuMs: (mainThreadCpuMs() - mainBefore) / next, processCpuMs: (cpu.user + cpu.system) / 1000 / next };
}

/** Runs the issue benchmark and prints progress, a summary table and the targets. */
export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  if (options.store === 'postgres') {
    await compareStores(options, args.includes('--concurrency') ? options.concurrency : [REFERENCE_CONCURRENCY, 64]);
    return;
  }
  const started = performance.now();
  const k = options.clients;
  say(
    `credbroker bench issue: ${options.seconds} s per measurement (+ warm-up), ${k} client processes, Renew at concurrency ${options.concurrency.join(', ')}; ` +
      `${availableParallelism()} cores, Node ${process.version}`,
  );
  const [load = 0] = loadavg();
  if (load > 0.5) say(`note: the machine is busy before the run (load average ${load.toFixed(2)} over 1 min): expect noisy figures`);
  // Cleanups that must run even if the hard limit strikes (synchronous: signals only).
  const emergency = new Set<() => void>();
  const hardStop = setTimeout(() => {
    process.stderr.write(`credbroker bench issue: stopped after the hard limit of ${HARD_LIMIT_MS / 60_000} min\n`);
    for (const kill of emergency) kill();
    process.exit(1);
  }, HARD_LIMIT_MS);
  hardStop.unref();

  let pool: ClientPool | null = null;
  let echo: EchoServer | null = null;
  let e2e: E2eBroker | null = null;
  let cfssl: CfsslServer | null = null;
  let echoC16: Measured | null = null;
  let echoC1: Measured | null = null;
  const renews: Measured[] = [];
  let cfsslResult: Measured | string;
  let csrCheckMs = Number.NaN;
  let serviceAlone: ServiceAlone | null = null;
  try {
    say(`starting ${k} client processes…`);
    pool = await ClientPool.start(k);

    // (a) the transport's ceiling.
    const ca = await createThrowawayCa();
    const serverIdentity = await ca.issue({ commonName: 'localhost', server: true, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const clientIdentity = await ca.issue({ commonName: 'bench client', server: false });
    echo = await startEchoServer(serverIdentity, ca.certificatePem);
    say(`[a] echo server (grpc-js, mTLS, throwaway P-256 CA, ${ECHO_PAYLOAD_BYTES}-byte payload) on ${echo.address}`);
    const echoTarget: Target = {
      kind: 'echo',
      address: echo.address,
      serverName: 'localhost',
      rootPem: ca.certificatePem,
      keyPem: clientIdentity.keyPem,
      certificateChainPem: clientIdentity.certificatePem,
      payloadBytes: ECHO_PAYLOAD_BYTES,
    };
    await pool.all('connected', () => ({ type: 'connect', target: echoTarget }), CONNECT_TIMEOUT_MS);
    say(`[a] echo at c${REFERENCE_CONCURRENCY} (${split(REFERENCE_CONCURRENCY, k).join(' + ')} in flight)…`);
    const ceiling = await measure(pool, REFERENCE_CONCURRENCY, options);
    echoC16 = ceiling;
    say(`    ${progressLine(ceiling, 'calls')}`);
    // A short c1 echo only sizes the CSR pools (no Renew at c1 outruns the bare transport at c1).
    const single = await measure(pool, 1, { ...options, seconds: Math.min(1, options.seconds) });
    echoC1 = single;
    say(`[a] echo at c1 (1 s, sizes the CSR pools): ${progressLine(single, 'calls')}`);
    await echo.stop();
    echo = null;
    const expectedRate = (c: number): number => Math.max(50, Math.min(ceiling.perSecond * 1.2, single.perSecond * c));

    // (b) Renew on a real broker.
    say('[b] key ceremony on a temp SoftHSM token, broker on 127.0.0.1:0…');
    e2e = await startE2eBroker();
    const config = loadConfigFile(e2e.configPath, brokerConfigSchema);
    const leafKeyLabel = config.ca?.intermediateKey ?? 'intermediate';
    const store = e2e.broker.store;
    const storeMode = store instanceof SqliteStore ? `SQLite synchronous=${store.settings().synchronous} under ${tmpdir()}` : 'store';
    say(
      `[b] broker on ${e2e.address}: ${storeMode}, audit on (checkpoint every ${config.audit?.checkpointEveryEntries ?? '?'} entries), ` +
        `HSM ${config.hsm.sessions} sessions, P-256 signing ${e2e.broker.token.signModeFor('P-256')}`,
    );
    const probe = StageProbe.attach(e2e.broker, leafKeyLabel);
    const identities: ClientIdentity[] = [];
    for (let i = 0; i < k; i++) identities.push(await e2e.enroll(await e2e.bootstrapToken(IMPORT)));
    say(`[b] enrolled ${k} client identities as ${IMPORT} (each client process renews with its own, keeping it for every call)`);
    const first = options.concurrency[0] ?? 1;
    await topUpPools(pool, first, expectedRate(first), options, 1);
    const broker = e2e;
    await pool.all(
      'connected',
      (i) => ({
        type: 'connect',
        target: {
          kind: 'renew',
          address: broker.address,
          serverName: 'localhost',
          rootPem: broker.rootPem,
          keyPem: identities[i]!.keyPem,
          certificateChainPem: identities[i]!.certificatePem + identities[i]!.chainPem,
        },
      }),
      CONNECT_TIMEOUT_MS,
    );
    for (const concurrency of options.concurrency) {
      await topUpPools(pool, concurrency, expectedRate(concurrency), options);
      say(`[b] Renew at c${concurrency} (${split(concurrency, k).join(' + ')} in flight)…`);
      const m = await measure(pool, concurrency, options, { probe });
      renews.push(m);
      say(`    ${progressLine(m, 'certs')}`);
    }
    csrCheckMs = await checkCsrAlone();
    say(`[b] BrokerService.renew alone in this process at c${REFERENCE_CONCURRENCY} (no transport; CSRs made first)…`);
    serviceAlone = await renewInProcess(e2e, identities[0]!, Math.min(3, options.seconds));
    say(`    ${fmt(serviceAlone.perSecond)} certs/s, main thread ${ms(serviceAlone.mainCpuMs, 3)} ms CPU per call, process ${ms(serviceAlone.processCpuMs, 3)} ms`);
    await e2e.close();
    e2e = null;

    // (c) cfssl serve, if installed.
    const binary = findOnPath('cfssl');
    if (binary === null) {
      cfsslResult = 'cfssl not installed (apt-get install golang-cfssl)';
      say(`[c] ${cfsslResult}`);
    } else {
      try {
        const cfsslCa = await createThrowawayCa('credbroker bench cfssl CA');
        cfssl = await startCfssl(binary, cfsslCa);
        const running = cfssl;
        emergency.add(() => {
          running.kill();
        });
        say(`[c] ${binary} serve on ${cfssl.url} (software P-256 CA key, no database, HTTP/1.1 JSON)`);
        await topUpPools(pool, REFERENCE_CONCURRENCY, Math.max(ceiling.perSecond * 1.5, 4_000), options, 1);
        const url = cfssl.url;
        await pool.all('connected', () => ({ type: 'connect', target: { kind: 'cfssl', url, hosts: [IMPORT] } }), CONNECT_TIMEOUT_MS);
        say(`[c] cfssl sign at c${REFERENCE_CONCURRENCY} (${split(REFERENCE_CONCURRENCY, k).join(' + ')} in flight)…`);
        const m = await measure(pool, REFERENCE_CONCURRENCY, options, { cpuMs: () => running.cpuMs() });
        cfsslResult = m;
        say(`    ${progressLine(m, 'certs')}`);
      } catch (error) {
        cfsslResult = `cfssl failed: ${error instanceof Error ? error.message : String(error)}`;
        say(`[c] ${cfsslResult}`);
      }
    }
  } finally {
    await pool?.close();
    await echo?.stop();
    await e2e?.close();
    await cfssl?.stop();
    clearTimeout(hardStop);
  }

  report(options, echoC16, echoC1, renews, cfsslResult, csrCheckMs, serviceAlone);
  say(`\ndone in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

function report(options: Options, ceiling: Measured, single: Measured, renews: readonly Measured[], cfssl: Measured | string, csrCheckMs: number, serviceAlone: ServiceAlone | null): void {
  const w = options.seconds;
  say(`\nsummary: calls completed per second over ${w} s windows; latency as the client processes saw it; event-loop lag of the serving process (this one; cfssl is Go)`);
  say(`${'run'.padEnd(30)}${'per s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}${'lag p99 ms'.padStart(12)}${'server CPU'.padStart(12)}${'client CPU'.padStart(12)}${'server CPU ms/call'.padStart(20)}${'main ms/call'.padStart(14)}${'loop busy'.padStart(11)}${'÷ (a)'.padStart(8)}`);
  const row = (label: string, m: Measured): void => {
    say(
      `${label.padEnd(30)}${fmt(m.perSecond).padStart(9)}${ms(m.p50Ms).padStart(9)}${ms(m.p99Ms).padStart(9)}${String(m.errors).padStart(8)}${ms(m.lagP99Ms, 1).padStart(12)}` +
        `${ms(m.serverCores).padStart(12)}${ms(m.clientCores).padStart(12)}${ms((m.serverCores * 1000) / m.perSecond, 3).padStart(20)}${ms((m.mainCores * 1000) / m.perSecond, 3).padStart(14)}${pct(m.loopBusy).padStart(11)}${pct(m.perSecond / ceiling.perSecond).padStart(8)}${m.poolExhausted ? '  (CSR pool ran out)' : ''}`,
    );
  };
  row(`(a) echo, mTLS, c${ceiling.concurrency}`, ceiling);
  row('    echo, mTLS, c1 (1 s)', single);
  for (const m of renews) row(`(b) Renew, c${m.concurrency}`, m);
  if (typeof cfssl === 'string') say(`(c) ${cfssl}`);
  else row(`(c) cfssl serve, c${cfssl.concurrency}`, cfssl);
  say('    CPU in cores (1.00 = one core busy for the whole window); server CPU ms/call = server CPU time per completed call;');
  say('    main ms/call = CPU of the serving event-loop thread per call; loop busy = its event-loop utilization (busy wall time: above its CPU share, it waited for a core or the disk)');
  if (serviceAlone !== null) {
    say(
      `    BrokerService.renew alone, in process, c${REFERENCE_CONCURRENCY}: ${fmt(serviceAlone.perSecond)} certs/s, main thread ${ms(serviceAlone.mainCpuMs, 3)} ms CPU per call ` +
        `(process ${ms(serviceAlone.processCpuMs, 3)} ms): the decision's ceiling without transport`,
    );
  }

  const rows = renews.map(stageRows);
  if (rows.some((r) => r.size > 0)) {
    say('\ntime per Renew by stage, ms (mean wall time per call: at c > 1 it includes waiting for the loop, the HSM and the group commit)');
    say(`${'stage'.padEnd(62)}${renews.map((m) => `c${m.concurrency}`.padStart(9)).join('')}`);
    const line = (label: string, key: string, digits = 3): void => {
      say(`${label.padEnd(62)}${rows.map((r) => ms(r.get(key) ?? Number.NaN, digits).padStart(9)).join('')}`);
    };
    line('BrokerService.renew, the whole decision', 'service');
    line('  HSM C_Sign with the leaf key (token.signRaw)', 'sign');
    line('  store: certificate rows (get + insert)', 'store');
    line('  audit: head read, hash chain, insert', 'audit');
    line('  transaction queue + group COMMIT (fsync)', 'commit');
    line('  rest: CSR check, TBS build, verify-after-sign, PEM reply', 'rest');
    line('outside the service: TLS, HTTP/2, protobuf, peer check, queues', 'outside');
    line('audit checkpoint signatures (off the request path)', 'checkpointSign');
    line('HSM signatures with the leaf key per Renew', 'signsPer', 2);
    line('store transactions per Renew', 'transactionsPer', 2);
    say(`checkCsr() alone, idle, in this process: ${ms(csrCheckMs, 3)} ms per CSR`);
    say('(stages from wrapping service.renew, token.signRaw and store.transaction: scripts/bench/issue-stages.ts)');
  }

  say(`\ntargets at concurrency ${REFERENCE_CONCURRENCY} (issue 4):`);
  const c16 = renews.find((m) => m.concurrency === REFERENCE_CONCURRENCY);
  if (c16 === undefined) {
    say(`  Renew was not measured at c${REFERENCE_CONCURRENCY}: add ${REFERENCE_CONCURRENCY} to --concurrency`);
    return;
  }
  const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  const share = c16.perSecond / ceiling.perSecond;
  say(`  Renew certs/s                 ${fmt(c16.perSecond).padStart(9)}   target >= ${fmt(TARGET_CERTS_PER_SECOND).padEnd(9)} ${verdict(c16.perSecond >= TARGET_CERTS_PER_SECOND && c16.errors === 0)}`);
  say(`  share of the echo ceiling (a) ${pct(share).padStart(9)}   target >= ${pct(TARGET_SHARE_OF_CEILING).padEnd(9)} ${verdict(share >= TARGET_SHARE_OF_CEILING && c16.errors === 0)}`);
  say(`  broker event-loop lag p99     ${`${ms(c16.lagP99Ms, 1)} ms`.padStart(9)}   target <= ${`${TARGET_LAG_P99_MS} ms`.padEnd(9)} ${verdict(c16.lagP99Ms <= TARGET_LAG_P99_MS)}`);
  if (typeof cfssl === 'string') say(`  stretch: Renew >= cfssl serve       n/a   (${cfssl})`);
  else say(`  stretch: Renew >= cfssl serve ${pct(c16.perSecond / cfssl.perSecond).padStart(9)}   target >= 100 %     ${verdict(c16.perSecond >= cfssl.perSecond)}`);
  if (c16.errors > 0) say(`  (Renew c${REFERENCE_CONCURRENCY} had ${c16.errors} failed calls: a rate with errors does not count as met)`);
}

/** A `credbroker serve` child process on `configPath`, once it prints its address. */
function serveProcess(configPath: string): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [CLI_PATH, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /listening on (127\.0\.0\.1:\d+)/.exec(stdout);
      if (match?.[1] !== undefined) resolve({ child, address: match[1] });
    });
    child.on('exit', (code) => {
      reject(new Error(`credbroker serve exited early (${String(code)}): ${stderr}`));
    });
  });
}

/**
 * `--store postgres`: Renew at each concurrency on SQLite, on one broker with PostgreSQL, and on
 * two brokers sharing it, in one run; a summary with each figure against SQLite's.
 */
async function compareStores(options: Options, levels: readonly number[]): Promise<void> {
  const k = options.clients;
  say(`credbroker bench issue --store postgres: Renew at concurrency ${levels.join(', ')}, ${options.seconds} s per measurement (+ warm-up), ${k} client processes; ${availableParallelism()} cores, Node ${process.version}`);
  if (k % 2 !== 0) say(`note: ${k} client processes do not split evenly over two brokers`);
  const rows: { label: string; m: Measured }[] = [];
  let pool: ClientPool | null = null;
  let e2e: E2eBroker | null = null;
  let server: TestPostgres | null = null;
  let second: ChildProcess | null = null;
  const hardStop = setTimeout(() => {
    process.stderr.write(`credbroker bench issue: stopped after the hard limit of ${HARD_LIMIT_MS / 60_000} min\n`);
    second?.kill('SIGKILL');
    server?.stop();
    process.exit(1);
  }, HARD_LIMIT_MS);
  hardStop.unref();
  /** Connects client i to addresses[i % n] with its own identity, then measures every level. */
  const runLevels = async (label: string, broker: E2eBroker, identities: readonly ClientIdentity[], addresses: readonly string[], probe: StageProbe | null): Promise<void> => {
    const clients = pool!;
    // Each client tests its connection with a CSR of its pool: fill the pools first.
    await topUpPools(clients, levels[0] ?? 1, Math.min(4_000, 400 * (levels[0] ?? 1)), options, 1);
    await clients.all(
      'connected',
      (i) => ({
        type: 'connect',
        target: { kind: 'renew', address: addresses[i % addresses.length]!, serverName: 'localhost', rootPem: broker.rootPem, keyPem: identities[i]!.keyPem, certificateChainPem: identities[i]!.certificatePem + identities[i]!.chainPem },
      }),
      CONNECT_TIMEOUT_MS,
    );
    for (const concurrency of levels) {
      await topUpPools(clients, concurrency, Math.min(4_000, 400 * concurrency), options);
      say(`  ${label}, Renew at c${concurrency}…`);
      const m = await measure(clients, concurrency, options, probe === null ? {} : { probe });
      rows.push({ label, m });
      say(`    ${fmt(m.perSecond)} certs/s  p50 ${ms(m.p50Ms)} ms  p99 ${ms(m.p99Ms)} ms${m.errors > 0 ? `  ${m.errors} errors (first: ${m.firstError})` : ''}`);
    }
  };
  const enrollAll = async (broker: E2eBroker): Promise<ClientIdentity[]> => {
    const identities: ClientIdentity[] = [];
    for (let i = 0; i < k; i++) identities.push(await broker.enroll(await broker.bootstrapToken(IMPORT)));
    return identities;
  };
  try {
    pool = await ClientPool.start(k);
    say('SQLite: key ceremony on a temp SoftHSM token, broker in this process…');
    e2e = await startE2eBroker();
    const sqlite = e2e.broker.store;
    say(`  store: ${sqlite instanceof SqliteStore ? `SQLite synchronous=${sqlite.settings().synchronous} under ${tmpdir()}` : 'store'}`);
    await runLevels('SQLite, 1 broker', e2e, await enrollAll(e2e), [e2e.address], null);
    await e2e.close();
    e2e = null;

    say('PostgreSQL: a durable cluster in a temp folder (fsync, synchronous_commit on), unix socket…');
    server = await startTestPostgres({ durable: true });
    const database = await server.createDatabase('bench');
    const storeYaml = `{ kind: postgres, host: "${server.socketDir}", port: ${server.port}, database: ${database}, user: ${server.user}, password: { file: "${server.passwordFile}" } }`;
    e2e = await startE2eBroker({ store: storeYaml, storePassword: server.password });
    const identities = await enrollAll(e2e);
    await runLevels('PostgreSQL, 1 broker', e2e, identities, [e2e.address], null);
    const spawned = await serveProcess(e2e.configPath);
    second = spawned.child;
    say(`  second broker: credbroker serve (pid ${String(spawned.child.pid)}) on ${spawned.address}, same config, token and database`);
    await runLevels('PostgreSQL, 2 brokers', e2e, identities, [e2e.address, spawned.address], null);
  } finally {
    const child = second;
    if (child !== null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 10_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
    await pool?.close();
    await e2e?.close();
    server?.stop();
    clearTimeout(hardStop);
  }

  say('\nsummary: Renew certs/s over mutual TLS, audit on, every call a fresh key; p50/p99 as the client processes saw them');
  say(`${'store'.padEnd(26)}${'c'.padStart(5)}${'certs/s'.padStart(10)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}${'÷ SQLite'.padStart(10)}`);
  for (const { label, m } of rows) {
    const base = rows.find((r) => r.label.startsWith('SQLite') && r.m.concurrency === m.concurrency)?.m.perSecond ?? Number.NaN;
    say(`${label.padEnd(26)}${String(m.concurrency).padStart(5)}${fmt(m.perSecond).padStart(10)}${ms(m.p50Ms).padStart(9)}${ms(m.p99Ms).padStart(9)}${String(m.errors).padStart(8)}${pct(m.perSecond / base).padStart(10)}`);
  }
}
