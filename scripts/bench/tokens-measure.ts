/**
 * One measured window of the tokens benchmark: the client processes (issue-client-pool.ts) keep
 * N calls in flight for a warm-up and then `seconds`, while this process — the server, echo or
 * broker — samples its own CPU (whole process and main thread), event-loop delay and
 * utilization over exactly that window. The same method as issue.ts's `measure`, without its
 * CSR pools, stage table or out-of-process server.
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { ClientPool } from './issue-client-pool.js';
import type { RunResult } from './issue-protocol.js';

/** A window's figures: calls as the clients saw them, CPU and loop as this (serving) process saw them. */
export interface WindowFigures {
  readonly concurrency: number;
  /** Successful calls per second, summed over the client processes. */
  readonly perSecond: number;
  /** Failed calls (warm-up included). */
  readonly errors: number;
  readonly firstError: string;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  /** Successful calls inside the window. */
  readonly calls: number;
  /** CPU of the client processes over the window, cores. */
  readonly clientCores: number;
  /** CPU of this process over the window (main thread + libuv pool + grpc), cores. */
  readonly serverCores: number;
  /** CPU of this process's main thread over the window, cores (NaN off Linux). */
  readonly mainCores: number;
  /** Event-loop delay of this process over the window, ms. */
  readonly lagP99Ms: number;
  readonly lagMaxMs: number;
  /** Event-loop utilization of this process over the window (0..1). */
  readonly loopBusy: number;
}

/** Something that times the server's stages over exactly the window. */
export interface WindowProbe {
  start(): void;
  stop(): void;
}

/** USER_HZ of Linux /proc times (100 on every mainstream architecture). */
const CLOCK_TICKS_PER_SECOND = 100;
/** Grace over the window for the clients' replies to arrive. */
const REPLY_GRACE_MS = 30_000;

/** CPU time of this process's main thread (Linux /proc), ms; NaN elsewhere. */
export function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** Splits `concurrency` calls in flight over `k` processes: 16 over 2 → 8 + 8. */
export function split(concurrency: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(concurrency / k) + (i < concurrency % k ? 1 : 0));
}

/** Nearest-rank percentile of sorted values; NaN for none. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

function processCpuMs(): number {
  const used = process.cpuUsage();
  return (used.user + used.system) / 1000;
}

/**
 * Runs the connected client processes at `concurrency` calls in flight: a warm-up of 0.3 to 1 s,
 * then a window of `seconds`, sampled on this side by timers at the window's edges.
 * @throws Error naming the client process that failed or did not answer in time
 */
export async function measureWindow(pool: ClientPool, concurrency: number, seconds: number, probe?: WindowProbe): Promise<WindowFigures> {
  const warmupMs = Math.min(1000, Math.max(300, seconds * 250));
  const durationMs = seconds * 1000;
  const lanes = split(concurrency, pool.size);
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  const at: { startedAt: number; cpuMs: number; mainMs: number; elu: EventLoopUtilization | null } = { startedAt: Number.NaN, cpuMs: 0, mainMs: 0, elu: null };
  const server = { cores: Number.NaN, mainCores: Number.NaN, loopBusy: Number.NaN, stopped: false };
  const stop = (): void => {
    if (Number.isNaN(at.startedAt) || server.stopped) return;
    server.stopped = true;
    histogram.disable();
    const elapsedMs = performance.now() - at.startedAt;
    server.cores = (processCpuMs() - at.cpuMs) / elapsedMs;
    server.mainCores = (mainThreadCpuMs() - at.mainMs) / elapsedMs;
    if (at.elu !== null) server.loopBusy = performance.eventLoopUtilization(at.elu).utilization;
    probe?.stop();
  };
  const startTimer = setTimeout(() => {
    histogram.reset();
    histogram.enable();
    at.cpuMs = processCpuMs();
    at.mainMs = mainThreadCpuMs();
    at.elu = performance.eventLoopUtilization();
    at.startedAt = performance.now();
    probe?.start();
  }, warmupMs);
  const stopTimer = setTimeout(stop, warmupMs + durationMs);
  const startAtEpochMs = Date.now() + warmupMs;
  let results: RunResult[];
  try {
    const replies = await pool.all('run', (i) => ({ type: 'run', concurrency: lanes[i] ?? 0, startAtEpochMs, durationMs }), warmupMs + durationMs + REPLY_GRACE_MS);
    results = replies.map((reply) => reply.result);
  } finally {
    clearTimeout(startTimer);
    clearTimeout(stopTimer);
    stop();
    histogram.disable();
  }
  const active = results.filter((_, i) => (lanes[i] ?? 0) > 0);
  const latencies = new Float64Array(active.reduce((n, r) => n + r.latenciesMs.length, 0));
  let offset = 0;
  for (const r of active) {
    latencies.set(r.latenciesMs, offset);
    offset += r.latenciesMs.length;
  }
  latencies.sort();
  const nsToMs = (ns: number): number => ns / 1e6;
  const measured = histogram.count > 0;
  return {
    concurrency,
    perSecond: active.reduce((rate, r) => rate + (r.windowMs > 0 ? r.calls / (r.windowMs / 1000) : 0), 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    firstError: results.find((r) => r.firstError !== '')?.firstError ?? '',
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    meanMs: latencies.length === 0 ? Number.NaN : latencies.reduce((a, b) => a + b, 0) / latencies.length,
    calls: latencies.length,
    clientCores: results.reduce((c, r) => c + r.cpuMs, 0) / durationMs,
    serverCores: server.cores,
    mainCores: server.mainCores,
    lagP99Ms: measured ? nsToMs(histogram.percentile(99)) : Number.NaN,
    lagMaxMs: measured ? nsToMs(histogram.max) : Number.NaN,
    loopBusy: server.loopBusy,
  };
}
