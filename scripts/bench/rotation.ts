/**
 * Forced-rotation benchmark (DESIGN.md: "rotation MTTR is seconds, not a TTL"), in one process:
 *
 * - a real broker (ceremony on a temp SoftHSM token, SQLite store and audit on, as
 *   test/e2e/harness.ts starts it) on 127.0.0.1:0;
 * - N agents, each a ServiceCredentials of src/agent (own key and certificate, a Rotation/Watch
 *   stream, on RENEW_NOW a Renew with a new key and Watch again with the new certificate),
 *   half as spiffe://e2e.test/pipeline/import and half as …/pipeline/blur, plus the operator
 *   (spiffe://e2e.test/ops/alice), itself a ServiceCredentials, that calls ForceRotate;
 * - once every Watch stream is registered (its WATCHING event), round 1: one ForceRotate with
 *   all = true (the operator's own certificate included), then wait until GetRotation says
 *   complete or the round's time runs out;
 * - round 2: ForceRotate of spiffe://e2e.test/pipeline/** on the renewed certificates.
 *
 * Per round: targeted, connected, rotated, pending; MTTR p50/p99/max as GetRotation reports it
 * (request until new certificate, broker clock) and as the agents measured it (ForceRotate sent
 * until the new certificate is in use, this process's clock); coverage = rotated / targeted.
 * Targets: coverage 100 %, max MTTR ≤ 5 s. Every wait is bounded; the whole run stops by itself
 * after {@link HARD_LIMIT_MS}.
 *
 *   npm run bench -- rotation [--agents 100] [--timeout 60]
 */
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { BLUR, IMPORT, OPERATOR, TRUST_DOMAIN, startE2eBroker, type E2eBroker } from '../../test/e2e/harness.js';
import { RotationFleet, type FleetMember } from './rotation-fleet.js';
import { RotationOperator, type RotationStatus } from './rotation-operator.js';
import { percentile } from './tokens-measure.js';

interface Options {
  /** Agents besides the operator. */
  agents: number;
  /** Longest wait per round for GetRotation to say complete, s. */
  timeoutSeconds: number;
  /** Keep the broker's state folder afterwards (for `credbroker report`). */
  keep: boolean;
}

const USAGE = 'usage: npm run bench -- rotation [--agents N] [--timeout S] [--keep]';
const MAX_AGENTS = 2_000;

function parseOptions(args: string[]): Options {
  const options: Options = { agents: 100, timeoutSeconds: 60, keep: false };
  for (let i = 0; i < args.length; i++) {
    const value = args[i + 1] ?? '';
    switch (args[i]) {
      case '--agents':
        options.agents = Math.min(MAX_AGENTS, Math.max(1, Math.floor(Number(value) || 100)));
        i++;
        break;
      case '--timeout':
        options.timeoutSeconds = Math.min(300, Math.max(5, Number(value) || 60));
        i++;
        break;
      case '--keep':
        options.keep = true;
        break;
      default:
        throw new Error(`unknown option ${args[i] ?? ''} (${USAGE})`);
    }
  }
  return options;
}

/** Targets. */
const TARGET_COVERAGE = 1;
const TARGET_MAX_MTTR_MS = 5_000;
/** Agents enrolling at once. */
const ENROLL_PARALLEL = 8;
/** Longest wait for every Watch stream to register (before a round), ms. */
const WATCH_WAIT_MS = 60_000;
/** Pause between GetRotation calls while it is not complete, ms. */
const POLL_INTERVAL_MS = 250;
/** Most GetRotation calls per round, whatever the timeout. */
const MAX_POLLS = 1_200;
/** The whole benchmark stops by itself after this long, whatever happens. */
const HARD_LIMIT_MS = 10 * 60 * 1000;
/** The second round's selector: every agent, not the operator. */
const PIPELINE_SELECTOR = `spiffe://${TRUST_DOMAIN}/pipeline/**`;

const ms = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const pct = (n: number): string => (Number.isFinite(n) ? `${(n * 100).toFixed(0)} %` : '—');
const seconds = (fromMs: number): string => `${((performance.now() - fromMs) / 1000).toFixed(1)} s`;
const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/**
 * Times the broker's ForceRotate decision (after TLS and the peer check: the store transaction
 * that lists and records every target, then one RENEW_NOW push per connected target), by
 * wrapping the instance's method as scripts/bench/issue-stages.ts does. Returns the last one's ms.
 */
function timeForceRotate(broker: E2eBroker): () => number {
  const rotation = broker.broker.rotation;
  const forceRotate = rotation.forceRotate.bind(rotation);
  let lastMs = Number.NaN;
  rotation.forceRotate = async (caller, request) => {
    const started = performance.now();
    try {
      return await forceRotate(caller, request);
    } finally {
      lastMs = performance.now() - started;
    }
  };
  return () => lastMs;
}

/** Sorted durations of one kind, ms. */
function sortedMs(values: readonly (number | null)[], from: number): Float64Array {
  return Float64Array.from(values.filter((v): v is number => v !== null).map((v) => v - from)).sort();
}

/** One round's outcome. */
interface RoundResult {
  readonly label: string;
  readonly request: string;
  /** ForceRotate's own reply, and how long it took, ms. */
  readonly started: RotationStatus;
  readonly forceRotateMs: number;
  /** The broker's ForceRotate decision alone (see timeForceRotate), ms. */
  readonly decisionMs: number;
  /** GetRotation at the end of the round (or the last one before time ran out). */
  readonly final: RotationStatus;
  /** From ForceRotate sent until GetRotation said complete (NaN: it never did), ms. */
  readonly completeAfterMs: number;
  /** The fleet members the selector names, as the agents saw the round. */
  readonly members: number;
  readonly pushMs: Float64Array;
  readonly renewedMs: Float64Array;
  readonly rewatchMs: Float64Array;
  /** Per member, from its new certificate in use to Watch registered with it, ms. */
  readonly reconnectMs: Float64Array;
  /** Members whose old Watch stream the broker ended (old certificate revoked). */
  readonly oldStreamsEnded: number;
  readonly failures: number;
  readonly firstFailure: string;
  readonly watchingBefore: number;
}

/** Runs one round: ForceRotate, wait for the agents, poll GetRotation until complete or `timeoutMs`. */
async function runRound(
  label: string,
  fleet: RotationFleet,
  operator: RotationOperator,
  request: { selector: string } | { all: true },
  targets: readonly FleetMember[],
  timeoutMs: number,
  decisionMs: () => number,
): Promise<RoundResult> {
  const watchingBefore = fleet.watching(targets);
  const t0 = fleet.beginRound();
  const deadline = t0 + timeoutMs;
  const started = await operator.forceRotate(request);
  const forceRotateMs = performance.now() - t0;
  const decision = decisionMs();
  say(
    `  ForceRotate ${'all' in request ? 'all=true' : request.selector}: ${started.rotationId}, targeted ${started.targeted}, connected ${started.connected} ` +
      `(reply in ${ms(forceRotateMs)} ms, of which the broker's decision ${ms(decision)} ms)`,
  );
  const renewed = (): number => targets.filter((m) => m.renewedAt !== null).length;
  await fleet.waitFor(
    () => renewed() === targets.length,
    Math.max(0, deadline - performance.now()),
    () => {
      say(`  +${seconds(t0)}: RENEW_NOW received ${targets.filter((m) => m.renewNowAt !== null).length}/${targets.length}, renewed ${renewed()}/${targets.length}`);
    },
  );
  let final = await operator.getRotation(started.rotationId);
  let polls = 1;
  while (!final.complete && polls < MAX_POLLS && performance.now() + POLL_INTERVAL_MS < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    final = await operator.getRotation(started.rotationId);
    polls++;
  }
  const completeAfterMs = final.complete ? performance.now() - t0 : Number.NaN;
  say(
    `  GetRotation after ${seconds(t0)}: targeted ${final.targeted}, rotated ${final.rotated}, pending ${final.pending}, revoked ${final.revoked}, expired ${final.expired}, ` +
      `complete ${String(final.complete)}; MTTR p50 ${ms(final.mttrP50Ms)} ms, p99 ${ms(final.mttrP99Ms)} ms, max ${ms(final.mttrMaxMs)} ms`,
  );
  // The renewed agents register their new certificate; the next round needs that anyway.
  const rewatched = (): number => targets.filter((m) => m.rewatchedAt !== null).length;
  await fleet.waitFor(() => rewatched() >= renewed(), Math.max(1_000, Math.min(WATCH_WAIT_MS, deadline - performance.now())));
  return {
    label,
    request: 'all' in request ? 'all=true' : `selector ${request.selector}`,
    started,
    forceRotateMs,
    decisionMs: decision,
    final,
    completeAfterMs,
    members: targets.length,
    pushMs: sortedMs(targets.map((m) => m.renewNowAt), t0),
    renewedMs: sortedMs(targets.map((m) => m.renewedAt), t0),
    rewatchMs: sortedMs(targets.map((m) => m.rewatchedAt), t0),
    reconnectMs: Float64Array.from(targets.flatMap((m) => (m.renewedAt !== null && m.rewatchedAt !== null ? [m.rewatchedAt - m.renewedAt] : []))).sort(),
    oldStreamsEnded: targets.filter((m) => m.watchDrops > 0).length,
    failures: targets.reduce((n, m) => n + m.failures, 0),
    firstFailure: targets.find((m) => m.firstFailure !== '')?.firstFailure ?? '',
    watchingBefore,
  };
}

/** Waits (bounded) until every member's Watch stream is registered; says how it went. */
async function waitForWatching(fleet: RotationFleet, members: readonly FleetMember[]): Promise<void> {
  const started = performance.now();
  const all = await fleet.waitFor(() => fleet.watching(members) === members.length, WATCH_WAIT_MS, () => {
    say(`  +${seconds(started)}: watching ${fleet.watching(members)}/${members.length}`);
  });
  say(`  ${all ? 'all' : 'only'} ${fleet.watching(members)}/${members.length} Watch streams registered (WATCHING) after ${seconds(started)}`);
}

/** Runs the rotation benchmark and prints progress, a summary table and the targets. */
export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const started = performance.now();
  say(`credbroker bench rotation: ${options.agents} agents + the operator, ServiceCredentials of src/agent, round timeout ${options.timeoutSeconds} s; ${availableParallelism()} cores, Node ${process.version}`);
  const [load = 0] = loadavg();
  if (load > 0.5) say(`note: the machine is busy before the run (load average ${load.toFixed(2)} over 1 min): expect noisy figures`);
  const hardStop = setTimeout(() => {
    process.stderr.write(`credbroker bench rotation: stopped after the hard limit of ${HARD_LIMIT_MS / 60_000} min\n`);
    process.exit(1);
  }, HARD_LIMIT_MS);
  hardStop.unref();

  let e2e: E2eBroker | null = null;
  let fleet: RotationFleet | null = null;
  let operator: RotationOperator | null = null;
  const rounds: RoundResult[] = [];
  let failure: string | null = null;
  try {
    say('key ceremony on a temp SoftHSM token, broker on 127.0.0.1:0…');
    e2e = await startE2eBroker({ enrollBurst: options.agents + 10, keepDir: options.keep });
    const broker = e2e;
    const decisionMs = timeForceRotate(broker);
    say(`broker on ${broker.address}`);

    const spiffeIds = [OPERATOR, ...Array.from({ length: options.agents }, (_, i) => (i % 2 === 0 ? IMPORT : BLUR))];
    const enrollStarted = performance.now();
    say(`enrolling ${spiffeIds.length} agents (${ENROLL_PARALLEL} at a time, a join token each)…`);
    fleet = await RotationFleet.start({
      address: broker.address,
      serverName: 'localhost',
      trustBundlePem: broker.rootPem,
      spiffeIds,
      joinToken: (spiffeId) => broker.bootstrapToken(spiffeId),
      parallel: ENROLL_PARALLEL,
      onEnrolled: (count) => {
        if (count % 25 === 0 && count < spiffeIds.length) say(`  ${count}/${spiffeIds.length} enrolled (${seconds(enrollStarted)})`);
      },
    });
    say(`  ${fleet.members.length} enrolled in ${seconds(enrollStarted)} (operator ${OPERATOR}; ${Math.ceil(options.agents / 2)} × ${IMPORT}, ${Math.floor(options.agents / 2)} × ${BLUR})`);
    const [operatorMember] = fleet.members;
    if (operatorMember === undefined) throw new Error('no operator in the fleet');
    operator = new RotationOperator({ address: broker.address, serverName: 'localhost', credentials: operatorMember.credentials });
    const everyone = fleet.members;
    const pipeline = everyone.filter((m) => m.spiffeId.startsWith(`spiffe://${TRUST_DOMAIN}/pipeline/`));
    const timeoutMs = options.timeoutSeconds * 1000;

    say('waiting for every Watch stream…');
    await waitForWatching(fleet, everyone);
    say(`round 1: ForceRotate all=true (${everyone.length} live certificates: ${options.agents} agents and the operator's own)…`);
    rounds.push(await runRound('1: all', fleet, operator, { all: true }, everyone, timeoutMs, decisionMs));

    say('waiting for every Watch stream on the renewed certificates…');
    await waitForWatching(fleet, everyone);
    say(`round 2: ForceRotate ${PIPELINE_SELECTOR} (the ${pipeline.length} agents' renewed certificates)…`);
    rounds.push(await runRound('2: pipeline/**', fleet, operator, { selector: PIPELINE_SELECTOR }, pipeline, timeoutMs, decisionMs));
  } catch (error) {
    // Reported after the figures measured so far.
    failure = error instanceof Error ? error.message : String(error);
  } finally {
    operator?.close();
    await fleet?.close();
    await e2e?.close();
    clearTimeout(hardStop);
  }
  if (options.keep && e2e !== null) {
    say(`broker state kept in ${e2e.dir}: credbroker report --db ${e2e.dir}/broker.db --policy ${e2e.dir}/policy.yaml --audit-key ${e2e.dir}/audit-key.pem`);
  }

  report(rounds);
  say(`\ndone in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (failure !== null) {
    process.exitCode = 1;
    say(`the run FAILED before the end: ${failure}`);
  }
}

function report(rounds: readonly RoundResult[]): void {
  say('\nsummary: counts and MTTR from GetRotation (request until new certificate, broker clock); "agents" = as the agents measured it from ForceRotate sent (this process\'s clock)');
  const columns: [string, number][] = [
    ['round', 16],
    ['targeted', 9],
    ['connected', 10],
    ['rotated', 8],
    ['pending', 8],
    ['coverage', 9],
    ['MTTR p50', 9],
    ['p99', 7],
    ['max ms', 8],
    ['agents p50', 11],
    ['p99', 7],
    ['max ms', 8],
    ['push max', 9],
    ['rewatch max', 12],
    ['complete at', 12],
    ['failures', 9],
  ];
  say(columns.map(([name, width], i) => (i === 0 ? name.padEnd(width) : name.padStart(width))).join(''));
  for (const r of rounds) {
    const f = r.final;
    const cells = [
      r.label,
      String(f.targeted),
      String(r.started.connected),
      String(f.rotated),
      String(f.pending),
      pct(f.targeted === 0 ? Number.NaN : f.rotated / f.targeted),
      ms(f.mttrP50Ms),
      ms(f.mttrP99Ms),
      ms(f.mttrMaxMs),
      ms(percentile(r.renewedMs, 0.5)),
      ms(percentile(r.renewedMs, 0.99)),
      ms(r.renewedMs.at(-1) ?? Number.NaN),
      ms(r.pushMs.at(-1) ?? Number.NaN),
      ms(r.rewatchMs.at(-1) ?? Number.NaN),
      Number.isFinite(r.completeAfterMs) ? `${ms(r.completeAfterMs)} ms` : 'never',
      String(r.failures),
    ];
    say(cells.map((cell, i) => (i === 0 ? cell.padEnd(columns[i]![1]) : cell.padStart(columns[i]![1]))).join(''));
  }
  for (const r of rounds) {
    say(
      `  round ${r.label} (${r.request}): ${r.watchingBefore}/${r.members} watching before; ForceRotate reply ${ms(r.forceRotateMs)} ms (broker decision ${ms(r.decisionMs)} ms: targets recorded, then pushed); RENEW_NOW at the agents p50 ${ms(percentile(r.pushMs, 0.5))} ms, ` +
        `max ${ms(r.pushMs.at(-1) ?? Number.NaN)} ms (${r.pushMs.length}/${r.members}); renewed ${r.renewedMs.length}/${r.members}; Watch again on the new certificate ${r.rewatchMs.length}/${r.members} ` +
        `(after the renewal: p50 ${ms(percentile(r.reconnectMs, 0.5))} ms, max ${ms(r.reconnectMs.at(-1) ?? Number.NaN)} ms); ` +
        `old streams ended by the broker ${r.oldStreamsEnded}/${r.members}${r.failures > 0 ? `; first failure: ${r.firstFailure}` : ''}`,
    );
  }
  say('  complete at = from ForceRotate sent until GetRotation said complete (it is polled every 250 ms once the agents have renewed);');
  say('  push = RENEW_NOW received; rewatch = Watch registered again with the new certificate (a new TLS connection); all from ForceRotate sent.');
  say('  The agents share this process and its event loop with the broker: their key generation and TLS reconnects compete with it.');

  say('\ntargets:');
  const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  for (const r of rounds) {
    const f = r.final;
    const coverage = f.targeted === 0 ? 0 : f.rotated / f.targeted;
    const agentsMax = r.renewedMs.at(-1) ?? Number.NaN;
    say(`  round ${r.label.padEnd(16)} coverage              ${pct(coverage).padStart(8)}   target  = ${pct(TARGET_COVERAGE).padEnd(8)} ${verdict(coverage >= TARGET_COVERAGE)}`);
    say(`  round ${r.label.padEnd(16)} max MTTR (GetRotation) ${`${ms(f.mttrMaxMs)} ms`.padStart(8)}   target <= ${`${TARGET_MAX_MTTR_MS} ms`.padEnd(8)} ${verdict(f.rotated > 0 && f.mttrMaxMs <= TARGET_MAX_MTTR_MS)}`);
    say(`  round ${r.label.padEnd(16)} max MTTR (agents)      ${`${ms(agentsMax)} ms`.padStart(8)}   target <= ${`${TARGET_MAX_MTTR_MS} ms`.padEnd(8)} ${verdict(r.renewedMs.length === r.members && agentsMax <= TARGET_MAX_MTTR_MS)}`);
  }
  if (rounds.length < 2) say(`  only ${rounds.length} of 2 rounds ran: the rest MISSED`);
}
