/**
 * A client process of the issue and tokens benchmarks (forked by issue-client-pool.ts): it keeps
 * a pool of fresh keys and CSRs made before any timing, connects to one target at a time (echo,
 * broker Renew or IssueToken, cfssl) and drives it with N calls in flight for a bounded time and
 * count, then reports latencies and its own CPU time. It exits when told to or when the parent
 * goes away.
 */
import 'reflect-metadata';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { connectBroker, unary } from '../../src/agent/index.js';
import { buildCsr, csrPem } from '../../test/helpers/csr-builder.js';
import { ECHO_PATH, rawBytes, type Command, type Reply, type RunResult, type Target } from './issue-protocol.js';

/** Most unused CSRs a process holds (≈ 250 bytes each). */
const MAX_POOL = 150_000;
/** Longest a pool top-up may take, whatever was asked. */
const POOL_TIME_LIMIT_MS = 120_000;
/** Most calls per run when no CSR bounds them (echo). */
const MAX_CALLS_PER_RUN = 2_000_000;
/** A run stops after this many failed calls. */
const MAX_ERRORS = 200;
/** Deadline of every single call. */
const CALL_DEADLINE_MS = 10_000;
/** Largest HTTP reply read from cfssl. */
const MAX_REPLY_BYTES = 1024 * 1024;

interface Connection {
  readonly usesCsr: boolean;
  call(csr: Buffer | undefined): Promise<void>;
  close(): void;
}

let pool: Buffer[] = [];
let next = 0;
let connection: Connection | null = null;

function send(reply: Reply): void {
  process.send?.(reply);
}

/** Generates key + CSR pairs until `available` unused CSRs are pooled (bounded in count and time). */
function topUp(available: number): Reply {
  pool = pool.slice(next);
  next = 0;
  const wanted = Math.min(MAX_POOL, Math.max(0, Math.floor(available)));
  const started = performance.now();
  let generated = 0;
  while (pool.length < wanted && performance.now() - started < POOL_TIME_LIMIT_MS) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    pool.push(buildCsr(privateKey, { commonName: 'credbroker bench' }));
    generated++;
  }
  return { type: 'pool', available: pool.length, generated, ms: performance.now() - started };
}

function takeCsr(): Buffer | undefined {
  if (next >= pool.length) return undefined;
  const csr = pool[next];
  next++;
  return csr;
}

function grpcOptions(serverName: string): grpc.ChannelOptions {
  return { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName };
}

function connectEcho(target: Extract<Target, { kind: 'echo' }>): Connection {
  const credentials = grpc.credentials.createSsl(Buffer.from(target.rootPem), Buffer.from(target.keyPem), Buffer.from(target.certificateChainPem));
  const client = new grpc.Client(target.address, credentials, grpcOptions(target.serverName));
  const payload = randomBytes(target.payloadBytes);
  return {
    usesCsr: false,
    call: () =>
      new Promise((resolve, reject) => {
        client.makeUnaryRequest(ECHO_PATH, rawBytes, rawBytes, payload, { deadline: Date.now() + CALL_DEADLINE_MS }, (error, reply) => {
          if (error !== null) reject(error);
          else if (reply?.length !== payload.length) reject(new Error('echo: the reply is not the payload'));
          else resolve();
        });
      }),
    close: () => {
      client.close();
    },
  };
}

function connectRenew(target: Extract<Target, { kind: 'renew' }>): Connection {
  const clients = connectBroker({
    address: target.address,
    trustBundlePem: target.rootPem,
    serverName: target.serverName,
    clientKeyPem: target.keyPem,
    clientCertificateChainPem: target.certificateChainPem,
  });
  return {
    usesCsr: true,
    // The caller keeps presenting its enrolled certificate: the renewed one is not needed to
    // renew again (each call brings a new key, so the broker's same-key check passes).
    call: async (csr) => {
      const reply = await unary<{ serial: string }>(clients.certificates, 'Renew', { csr, ttlSeconds: 0 }, CALL_DEADLINE_MS);
      if (reply.serial === '') throw new Error('Renew: reply without a serial');
    },
    close: () => {
      clients.close();
    },
  };
}

function connectIssueToken(target: Extract<Target, { kind: 'issue-token' }>): Connection {
  const clients = connectBroker({
    address: target.address,
    trustBundlePem: target.rootPem,
    serverName: target.serverName,
    clientKeyPem: target.keyPem,
    clientCertificateChainPem: target.certificateChainPem,
  });
  const request = { audience: target.audience, scopes: [...target.scopes], ttlSeconds: target.ttlSeconds, bindToCertificate: target.bindToCertificate };
  return {
    usesCsr: false,
    call: async () => {
      const reply = await unary<{ token: string; bound: boolean }>(clients.tokens, 'IssueToken', request, CALL_DEADLINE_MS);
      // A compact JWS has three parts; a bound token was asked for, so an unbound one is a failure.
      if (reply.token.split('.').length !== 3) throw new Error('IssueToken: the reply carries no compact JWS');
      if (target.bindToCertificate && !reply.bound) throw new Error('IssueToken: asked for a bound token, got an unbound one');
    },
    close: () => {
      clients.close();
    },
  };
}

function connectCfssl(target: Extract<Target, { kind: 'cfssl' }>): Connection {
  const url = new URL('/api/v1/cfssl/sign', target.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  return {
    usesCsr: true,
    call: (csr) =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify({ certificate_request: csrPem(csr ?? Buffer.alloc(0)), hosts: target.hosts });
        const request = http.request(
          url,
          { agent, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: CALL_DEADLINE_MS },
          (response) => {
            const chunks: Buffer[] = [];
            let size = 0;
            response.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size <= MAX_REPLY_BYTES) chunks.push(chunk);
            });
            response.on('error', reject);
            response.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let certificate = '';
              try {
                const parsed = JSON.parse(text) as { success?: unknown; result?: { certificate?: unknown } };
                if (parsed.success === true && typeof parsed.result?.certificate === 'string') certificate = parsed.result.certificate;
              } catch {
                // reported below with the reply's beginning
              }
              if (response.statusCode === 200 && certificate.startsWith('-----BEGIN CERTIFICATE-----')) resolve();
              else reject(new Error(`cfssl sign: HTTP ${response.statusCode ?? 0}: ${text.slice(0, 300)}`));
            });
          },
        );
        request.on('timeout', () => request.destroy(new Error('cfssl sign: no reply within the deadline')));
        request.on('error', reject);
        request.end(body);
      }),
    close: () => {
      agent.destroy();
    },
  };
}

async function connect(target: Target): Promise<Reply> {
  connection?.close();
  switch (target.kind) {
    case 'echo':
      connection = connectEcho(target);
      break;
    case 'renew':
      connection = connectRenew(target);
      break;
    case 'issue-token':
      connection = connectIssueToken(target);
      break;
    case 'cfssl':
      connection = connectCfssl(target);
      break;
  }
  const csr = connection.usesCsr ? takeCsr() : undefined;
  if (connection.usesCsr && csr === undefined) return { type: 'failed', message: 'no CSR in the pool to test the connection with' };
  await connection.call(csr);
  return { type: 'connected' };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function run(concurrency: number, startAtEpochMs: number, durationMs: number): Promise<RunResult> {
  const current = connection;
  if (current === null) throw new Error('run before connect');
  // performance.now() is monotonic; the parent's start time is wall-clock (same machine).
  const windowStart = performance.now() + (startAtEpochMs - Date.now());
  const windowEnd = windowStart + durationMs;
  const capacity = current.usesCsr ? Math.max(0, pool.length - next) : MAX_CALLS_PER_RUN;
  const latencies = new Float64Array(Math.min(capacity, MAX_CALLS_PER_RUN));
  let calls = 0;
  let issued = 0;
  let errors = 0;
  let firstError = '';
  let stoppedAt = Number.POSITIVE_INFINITY;
  let poolExhausted = false;

  // CPU time over the window: sampled by timers at its start and end (or when the run stops early).
  const cpu: { start: NodeJS.CpuUsage | null; ms: number | null } = { start: null, ms: null };
  const sampleEnd = (): void => {
    if (cpu.start === null || cpu.ms !== null) return;
    const used = process.cpuUsage(cpu.start);
    cpu.ms = (used.user + used.system) / 1000;
  };
  const startTimer = setTimeout(() => {
    cpu.start = process.cpuUsage();
  }, Math.max(0, windowStart - performance.now()));
  const endTimer = setTimeout(sampleEnd, Math.max(0, windowEnd - performance.now()));

  const lane = async (): Promise<void> => {
    while (performance.now() < windowEnd && issued < latencies.length && errors < MAX_ERRORS) {
      const csr = current.usesCsr ? takeCsr() : undefined;
      if (current.usesCsr && csr === undefined) {
        poolExhausted = true;
        stoppedAt = Math.min(stoppedAt, performance.now());
        return;
      }
      issued++;
      const started = performance.now();
      try {
        await current.call(csr);
        const ended = performance.now();
        if (ended >= windowStart && ended <= windowEnd && calls < latencies.length) latencies[calls++] = ended - started;
      } catch (error) {
        errors++;
        if (firstError === '') firstError = messageOf(error);
        if (errors >= MAX_ERRORS) stoppedAt = Math.min(stoppedAt, performance.now());
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  sampleEnd();
  const windowMs = Math.max(0, Math.min(stoppedAt, windowEnd) - windowStart);
  return { calls, errors, firstError, windowMs: concurrency === 0 ? durationMs : windowMs, latenciesMs: latencies.slice(0, calls), cpuMs: cpu.ms ?? 0, poolExhausted };
}

async function handle(command: Command): Promise<Reply> {
  switch (command.type) {
    case 'pool':
      return topUp(command.available);
    case 'connect':
      return connect(command.target);
    case 'run':
      return { type: 'run', result: await run(command.concurrency, command.startAtEpochMs, command.durationMs) };
    case 'exit':
      connection?.close();
      process.exit(0);
  }
}

// Commands arrive one at a time (the parent waits for each reply), but chain them anyway.
let queue: Promise<void> = Promise.resolve();
process.on('message', (message: Command) => {
  queue = queue.then(async () => {
    try {
      send(await handle(message));
    } catch (error) {
      send({ type: 'failed', message: messageOf(error) });
    }
  });
});
// The benchmark stops by itself: a client whose parent is gone exits.
process.on('disconnect', () => {
  process.exit(1);
});
send({ type: 'ready' });
