/**
 * Tokens benchmark, in one run, every client in separate processes (issue-client.ts):
 *
 * (a) the transport's ceiling: a grpc-js unary echo over mutual TLS (throwaway P-256 CA) at
 *     concurrency 16, as issue.ts measures it;
 * (b) `Tokens/IssueToken` end to end on a real broker (ceremony on a temp SoftHSM token, SQLite
 *     store and audit on, as test/e2e/harness.ts starts it) at concurrency 16, each client
 *     process enrolled as spiffe://e2e.test/pipeline/import and asking for bound tokens (its
 *     policy requires binding): tokens/s, client p50/p99, the broker's event-loop lag p99, its
 *     main-thread CPU per call, time per stage, and the share of (a);
 * (c) token verification with the library's TokenVerifier on one core
 *     (tokens-verify.ts `measureVerification`), with jose's jwtVerify as its baseline.
 *
 * Targets: (b) ≥ 70 % of (a); (c) ≥ 8,000 verifications/s. Only 127.0.0.1; every loop is
 * bounded in count and time, and the whole run stops by itself after {@link HARD_LIMIT_MS}.
 *
 *   npm run bench -- tokens [--seconds 6] [--clients 2]
 */
import { X509Certificate } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { JSONWebKeySet } from 'jose';
import { unary } from '../../src/agent/index.js';
import { brokerConfigSchema, loadConfigFile } from '../../src/config/index.js';
import { ManualClock } from '../../src/core/index.js';
import { TokenVerifier } from '../../src/tokens/index.js';
import { IMPORT, startE2eBroker, type ClientIdentity, type E2eBroker } from '../../test/e2e/harness.js';
import { createThrowawayCa } from './issue-ca.js';
import { ClientPool } from './issue-client-pool.js';
import { startEchoServer, type EchoServer } from './issue-echo.js';
import type { Target } from './issue-protocol.js';
import { measureWindow, split, type WindowFigures } from './tokens-measure.js';
import { TokenStageProbe, issueInProcess, type IssueAlone, type TokenAsk, type TokenStageTotals } from './tokens-stages.js';
import { measureVerification, type VerificationMeasurement } from './tokens-verify.js';

interface Options {
  /** Measured window of (a) and (b), s; (c) runs as long per library. */
  seconds: number;
  /** Client processes. */
  clients: number;
}

const USAGE = 'usage: npm run bench -- tokens [--seconds N] [--clients K]';

function parseOptions(args: string[]): Options {
  const options: Options = { seconds: 6, clients: 2 };
  for (let i = 0; i < args.length; i++) {
    const value = args[i + 1] ?? '';
    switch (args[i]) {
      case '--seconds':
        options.seconds = Math.min(60, Math.max(0.5, Number(value) || 6));
        i++;
        break;
      case '--clients':
        options.clients = Math.min(8, Math.max(1, Math.floor(Number(value) || 2)));
        i++;
        break;
      default:
        throw new Error(`unknown option ${args[i] ?? ''} (${USAGE})`);
    }
  }
  return options;
}

/** Concurrency of (a) and (b). */
const CONCURRENCY = 16;
/** Targets. */
const TARGET_SHARE_OF_CEILING = 0.7;
const TARGET_VERIFICATIONS_PER_SECOND = 8_000;
/** The echo payload, both ways: as issue.ts (an IssueToken request is ≈ 50 bytes, its reply ≈ 750). */
const ECHO_PAYLOAD_BYTES = 256;
/** What each client process asks for: the import service's grant (test/e2e/harness.ts policy). */
const ASK: TokenAsk = { audience: 'storage.source', scopes: ['media.source.write'], ttlSeconds: 0, bindToCertificate: true };
/** The whole benchmark stops by itself after this long, whatever happens. */
const HARD_LIMIT_MS = 8 * 60 * 1000;
const CONNECT_TIMEOUT_MS = 30_000;
/** Longest (c) may measure per library. */
const MAX_VERIFY_SECONDS = 10;
/** Longest the in-process ceiling runs. */
const MAX_IN_PROCESS_SECONDS = 3;

const fmt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const ms = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const pct = (n: number): string => (Number.isFinite(n) ? `${(n * 100).toFixed(0)} %` : '—');
const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

function progressLine(m: WindowFigures, unit: string): string {
  const flags = m.errors > 0 ? `  [${m.errors} errors (first: ${m.firstError})]` : '';
  return (
    `${fmt(m.perSecond)} ${unit}/s  p50 ${ms(m.p50Ms)} ms  p99 ${ms(m.p99Ms)} ms  loop lag p99 ${ms(m.lagP99Ms, 1)} ms (max ${ms(m.lagMaxMs, 1)}), ` +
    `loop busy ${pct(m.loopBusy)}, main thread ${ms(m.mainCores)} cores = ${ms((m.mainCores * 1000) / m.perSecond, 3)} ms/call, process ${ms(m.serverCores)} cores, clients ${ms(m.clientCores)} cores${flags}`
  );
}

/** What the run measured; null where it did not get that far. */
interface Results {
  echo: WindowFigures | null;
  issue: WindowFigures | null;
  stages: TokenStageTotals | null;
  alone: IssueAlone | null;
  verification: VerificationMeasurement | null;
  /** The check of a broker token with TokenVerifier and GetJwks (a line for the report). */
  brokerTokenCheck: string;
}

/**
 * Issues one token as `identity` over the real API and verifies it with TokenVerifier against
 * the broker's GetJwks, bound to the identity's certificate: proof that (c) measures the kind of
 * token (b) issues. Returns a line for the report.
 */
async function checkBrokerToken(e2e: E2eBroker, identity: ClientIdentity, issuer: string): Promise<string> {
  const clients = e2e.as(identity);
  const reply = await unary<{ token: string; bound: boolean }>(clients.tokens, 'IssueToken', { ...ASK, scopes: [...ASK.scopes] });
  const jwks = await unary<{ jwksJson: string; currentKid: string }>(clients.tokens, 'GetJwks', {});
  const verifier = new TokenVerifier({ issuer, jwks: JSON.parse(jwks.jwksJson) as JSONWebKeySet, clock: new ManualClock(e2e.clock.now().getTime()) });
  const verified = await verifier.verify(reply.token, { audience: ASK.audience, scopes: ASK.scopes, clientCertificate: new X509Certificate(identity.certificatePem).raw, requireBinding: true });
  return `a broker token (${reply.token.length} characters, kid ${verified.kid.slice(0, 12)}…, ${verified.algorithm}, bound ${String(verified.bound)}, ${verified.scopes.join(' ')} for ${verified.audience}) verifies with TokenVerifier against GetJwks`;
}

/** Runs the tokens benchmark and prints progress, a summary table and the targets. */
export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const started = performance.now();
  const k = options.clients;
  say(
    `credbroker bench tokens: ${options.seconds} s per measurement (+ warm-up), ${k} client processes, concurrency ${CONCURRENCY}; ` +
      `${availableParallelism()} cores, Node ${process.version}`,
  );
  const [load = 0] = loadavg();
  if (load > 0.5) say(`note: the machine is busy before the run (load average ${load.toFixed(2)} over 1 min): expect noisy figures`);
  const hardStop = setTimeout(() => {
    process.stderr.write(`credbroker bench tokens: stopped after the hard limit of ${HARD_LIMIT_MS / 60_000} min\n`);
    process.exit(1);
  }, HARD_LIMIT_MS);
  hardStop.unref();

  const results: Results = { echo: null, issue: null, stages: null, alone: null, verification: null, brokerTokenCheck: 'not checked' };
  let pool: ClientPool | null = null;
  let echo: EchoServer | null = null;
  let e2e: E2eBroker | null = null;
  let failure: string | null = null;
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
    say(`[a] echo at c${CONCURRENCY} (${split(CONCURRENCY, k).join(' + ')} in flight)…`);
    results.echo = await measureWindow(pool, CONCURRENCY, options.seconds);
    say(`    ${progressLine(results.echo, 'calls')}`);
    await echo.stop();
    echo = null;

    // (b) IssueToken on a real broker.
    say('[b] key ceremony on a temp SoftHSM token, broker on 127.0.0.1:0…');
    e2e = await startE2eBroker();
    const broker = e2e;
    const config = loadConfigFile(broker.configPath, brokerConfigSchema);
    const tokenKeyLabel = config.tokens?.key ?? 'token-signing';
    const issuer = config.tokens?.issuer ?? `spiffe://${broker.broker.trustDomain}/credbroker`;
    say(
      `[b] broker on ${broker.address}: SQLite store, audit on (checkpoint every ${config.audit?.checkpointEveryEntries ?? '?'} entries), ` +
        `HSM ${config.hsm.sessions} sessions, token key "${tokenKeyLabel}" signing ${broker.broker.token.signModeFor('P-256')}`,
    );
    const probe = TokenStageProbe.attach(broker.broker, tokenKeyLabel);
    const identities: ClientIdentity[] = [];
    for (let i = 0; i < k; i++) identities.push(await broker.enroll(await broker.bootstrapToken(IMPORT)));
    say(`[b] enrolled ${k} client identities as ${IMPORT}; each process asks with its own: audience ${ASK.audience}, scope ${ASK.scopes.join(' ')}, bound (policy requires it)`);
    results.brokerTokenCheck = await checkBrokerToken(broker, identities[0]!, issuer);
    say(`[b] ${results.brokerTokenCheck}`);
    await pool.all(
      'connected',
      (i) => ({
        type: 'connect',
        target: {
          kind: 'issue-token',
          address: broker.address,
          serverName: 'localhost',
          rootPem: broker.rootPem,
          keyPem: identities[i]!.keyPem,
          certificateChainPem: identities[i]!.certificatePem + identities[i]!.chainPem,
          ...ASK,
        },
      }),
      CONNECT_TIMEOUT_MS,
    );
    say(`[b] IssueToken at c${CONCURRENCY} (${split(CONCURRENCY, k).join(' + ')} in flight)…`);
    results.issue = await measureWindow(pool, CONCURRENCY, options.seconds, probe);
    results.stages = probe.last;
    say(`    ${progressLine(results.issue, 'tokens')}`);
    const aloneSeconds = Math.min(MAX_IN_PROCESS_SECONDS, options.seconds);
    say(`[b] TokenService.issueToken alone in this process at c${CONCURRENCY} for ${aloneSeconds} s (no transport)…`);
    results.alone = await issueInProcess(broker.broker, IMPORT, identities[0]!, ASK, CONCURRENCY, aloneSeconds);
    say(`    ${fmt(results.alone.perSecond)} tokens/s, main thread ${ms(results.alone.mainCpuMs, 3)} ms CPU per call, process ${ms(results.alone.processCpuMs, 3)} ms`);
    await pool.close();
    pool = null;
    await e2e.close();
    e2e = null;

    // (c) verification on one core (nothing else running now).
    const verifySeconds = Math.min(MAX_VERIFY_SECONDS, options.seconds);
    say(`[c] TokenVerifier on one core, ${verifySeconds} s, then jose jwtVerify as long…`);
    results.verification = await measureVerification(verifySeconds);
    const v = results.verification;
    say(`    ${fmt(v.perSecond)} verifications/s (jose ${fmt(v.josePerSecond)}/s, ×${ms(v.ratioToJose)}), ${fmt(v.verifications)} verifications of ${v.tokens} tokens, ${ms(v.coresUsed)} cores`);
  } catch (error) {
    // Reported after the figures measured so far.
    failure = error instanceof Error ? error.message : String(error);
  } finally {
    await pool?.close();
    await echo?.stop();
    await e2e?.close();
    clearTimeout(hardStop);
  }

  report(options, results);
  say(`\ndone in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (failure !== null) {
    process.exitCode = 1;
    say(`the run FAILED before the end: ${failure}`);
  }
}

function report(options: Options, r: Results): void {
  say(`\nsummary: calls completed per second over ${options.seconds} s windows at c${CONCURRENCY}; latency as the client processes saw it; CPU and event loop of the serving process (this one)`);
  say(
    `${'run'.padEnd(30)}${'per s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}${'lag p99 ms'.padStart(12)}${'server CPU'.padStart(12)}` +
      `${'client CPU'.padStart(12)}${'server ms/call'.padStart(16)}${'main ms/call'.padStart(14)}${'loop busy'.padStart(11)}${'÷ (a)'.padStart(8)}`,
  );
  const row = (label: string, m: WindowFigures): void => {
    say(
      `${label.padEnd(30)}${fmt(m.perSecond).padStart(9)}${ms(m.p50Ms).padStart(9)}${ms(m.p99Ms).padStart(9)}${String(m.errors).padStart(8)}${ms(m.lagP99Ms, 1).padStart(12)}` +
        `${ms(m.serverCores).padStart(12)}${ms(m.clientCores).padStart(12)}${ms((m.serverCores * 1000) / m.perSecond, 3).padStart(16)}${ms((m.mainCores * 1000) / m.perSecond, 3).padStart(14)}` +
        `${pct(m.loopBusy).padStart(11)}${pct(r.echo === null ? Number.NaN : m.perSecond / r.echo.perSecond).padStart(8)}`,
    );
  };
  if (r.echo !== null) row(`(a) echo, mTLS, c${CONCURRENCY}`, r.echo);
  if (r.issue !== null) row(`(b) IssueToken, c${CONCURRENCY}`, r.issue);
  say('    CPU in cores (1.00 = one core busy for the whole window); server ms/call = this process\'s CPU per completed call;');
  say('    main ms/call = CPU of the serving event-loop thread per call; loop busy = its event-loop utilization');
  if (r.alone !== null) {
    say(
      `    TokenService.issueToken alone, in process, c${CONCURRENCY}: ${fmt(r.alone.perSecond)} tokens/s, main thread ${ms(r.alone.mainCpuMs, 3)} ms CPU per call ` +
        `(process ${ms(r.alone.processCpuMs, 3)} ms): the decision's ceiling without transport`,
    );
  }
  if (r.verification !== null) {
    const v = r.verification;
    say(`(c) TokenVerifier, one core, sequential: ${fmt(v.perSecond)} verifications/s; jose jwtVerify ${fmt(v.josePerSecond)}/s (×${ms(v.ratioToJose)}); ${ms(v.coresUsed)} cores used`);
  }
  say(`    ${r.brokerTokenCheck}`);

  const s = r.stages;
  if (s !== null && s.issues > 0 && r.issue !== null) {
    const per = (value: number, count = s.issues): string => ms(value / count, 3).padStart(9);
    const decision = s.issueMs / s.issues;
    say(`\ntime per IssueToken by stage at c${CONCURRENCY}, ms (mean wall time per call: includes waiting for the loop, the HSM and the group commit)`);
    say(`${'TokenService.issueToken, the whole decision'.padEnd(66)}${per(s.issueMs)}`);
    say(`${'  HSM C_Sign with the token key (token.signRaw)'.padEnd(66)}${per(s.stages.signMs)}`);
    say(`${'  audit: head read, hash chain, insert'.padEnd(66)}${per(s.stages.auditMs)}`);
    say(`${'  transaction queue + group COMMIT (fsync), beyond the audit rows'.padEnd(66)}${per(s.stages.transactionMs - s.stages.auditMs - s.stages.storeMs)}`);
    say(`${'  rest: policy, claims, verify-after-sign'.padEnd(66)}${per(s.issueMs - s.stages.signMs - s.stages.transactionMs)}`);
    say(`${'outside the service: TLS, HTTP/2, protobuf, peer check, queues'.padEnd(66)}${ms(r.issue.meanMs - decision, 3).padStart(9)}`);
    say(`${'HSM signatures with the token key per IssueToken'.padEnd(66)}${ms(s.stages.signs / s.issues, 2).padStart(9)}`);
    say(`${'audit checkpoint signatures per IssueToken (off the request path)'.padEnd(66)}${ms(s.stages.otherSigns / s.issues, 3).padStart(9)}`);
    say(`${'store transactions per IssueToken'.padEnd(66)}${ms(s.stages.transactions / s.issues, 2).padStart(9)}`);
    if (s.commits > 0) {
      const windowMs = options.seconds * 1000;
      say(`${'SQLite COMMITs per IssueToken (1 / group-commit batch size)'.padEnd(66)}${ms(s.commits / s.issues, 3).padStart(9)}`);
      say(`${'  each COMMIT on the event loop (fsync, synchronous = FULL), ms'.padEnd(66)}${ms(s.commitMs / s.commits, 3).padStart(9)}`);
      say(`${'  share of the window the event loop was blocked in COMMIT'.padEnd(66)}${pct(s.commitMs / windowMs).padStart(9)}`);
    }
  }

  say('\ntargets:');
  const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  if (r.issue !== null && r.echo !== null) {
    const share = r.issue.perSecond / r.echo.perSecond;
    say(`  IssueToken share of the echo ceiling (a)   ${pct(share).padStart(9)}   target >= ${pct(TARGET_SHARE_OF_CEILING).padEnd(9)} ${verdict(share >= TARGET_SHARE_OF_CEILING && r.issue.errors === 0)}`);
    if (r.issue.errors > 0) say(`  (IssueToken had ${r.issue.errors} failed calls: a rate with errors does not count as met)`);
  } else {
    say('  IssueToken share of the echo ceiling (a)   not measured   MISSED');
  }
  if (r.verification !== null) {
    say(`  TokenVerifier verifications/s, one core    ${fmt(r.verification.perSecond).padStart(9)}   target >= ${fmt(TARGET_VERIFICATIONS_PER_SECOND).padEnd(9)} ${verdict(r.verification.perSecond >= TARGET_VERIFICATIONS_PER_SECOND)}`);
  } else {
    say('  TokenVerifier verifications/s, one core    not measured   MISSED');
  }
}
