/**
 * A real broker for e2e tests: a ceremony on the test run's SoftHSM, a policy, a config file,
 * `startBroker` on 127.0.0.1:0, and real mTLS clients. The broker's clock is the real one plus
 * an offset the test controls, so expiry is tested by moving the broker's time, never by
 * sleeping (TLS itself keeps checking the server certificate against real time).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { Secret, systemRandom, type Clock, type Logger } from '../../src/core/index.js';
import { brokerConfigSchema, loadConfigFile } from '../../src/config/index.js';
import { runCeremony } from '../../src/ceremony/index.js';
import { connectBroker, newKeyAndCsr, unary, type BrokerClients } from '../../src/agent/index.js';
import { startBroker, mintJoinToken, type RunningBroker } from '../../src/server/index.js';
import { AuditLog } from '../../src/audit/index.js';
import { softHsmDir } from '../helpers/softhsm.js';

/** The trust domain of the e2e broker. */
export const TRUST_DOMAIN = 'e2e.test';
export const OPERATOR = `spiffe://${TRUST_DOMAIN}/ops/alice`;
export const IMPORT = `spiffe://${TRUST_DOMAIN}/pipeline/import`;
export const BLUR = `spiffe://${TRUST_DOMAIN}/pipeline/blur`;

const POLICY = `version: 1
trustDomain: ${TRUST_DOMAIN}
joinTokens: { defaultTtl: 15m, maxTtl: 1h }
certificates: { defaultTtl: 1h, maxTtl: 24h }
tokens: { defaultTtl: 5m, maxTtl: 1h }
identities:
  - id: ${OPERATOR}
    role: operator
    description: the e2e operator
  - id: ${IMPORT}
    role: service
    description: reads uploads
    dnsNames: [import.pipeline.internal]
    certificates: { defaultTtl: 1h, maxTtl: 4h }
    tokens: { audiences: [storage.source], scopes: [media.source.write], maxTtl: 10m }
    resources: [bucket:source-media]
  - id: ${BLUR}
    role: service
    description: blurs faces and plates
    tokens: { audiences: [storage.source, storage.anonymized], scopes: [media.source.read, media.anonymized.write], requireBinding: false }
    resources: [bucket:source-media, bucket:anonymized-media]
`;

/** A clock that runs with real time, shifted by `offsetMs`. */
export class ShiftedClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

/** A key and certificate a client presents. */
export interface ClientIdentity {
  readonly keyPem: string;
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly serial: string;
}

/** The running e2e broker and what tests need around it. */
export interface E2eBroker {
  readonly dir: string;
  readonly broker: RunningBroker;
  readonly clock: ShiftedClock;
  readonly address: string;
  readonly rootPem: string;
  readonly configPath: string;
  /** Clients without a client certificate (enrollment only). */
  anonymous(): BrokerClients;
  /** Clients presenting `identity`. */
  as(identity: ClientIdentity): BrokerClients;
  /** A join token minted straight in the store (the bootstrap path). */
  bootstrapToken(spiffeId: string, ttlMs?: number): Promise<string>;
  /** Enrolls a fresh key with a join token. */
  enroll(joinToken: string, ttlSeconds?: number): Promise<ClientIdentity>;
  close(): Promise<void>;
}

/** Options of {@link startE2eBroker} for CA roll-over tests (test/e2e/ca-rollover.test.ts). */
export interface CaRolloverOptions {
  /** The initial ceremony's time (default now): the root and the first intermediate start then. */
  readonly ceremonyAt?: Date;
  /** The first intermediate's validity (default 20d). */
  readonly intermediateValidity?: string;
  /** `tokens.nextKeyPublishFor` (default the broker's). */
  readonly nextKeyPublishFor?: string;
}

/**
 * Starts a broker on a fresh CA (new tokens and keys on the run's SoftHSM).
 * @param options.metricsListen the metrics listener's address (default 127.0.0.1:0)
 * @param options.store the config's `store` section as a YAML flow mapping (default
 *   `{ path: broker.db }`), with `storePassword` the PostgreSQL password it names the source of
 */
export async function startE2eBroker(options: { enrollBurst?: number; logger?: Logger; metricsListen?: string; keepDir?: boolean; store?: string; storePassword?: Secret } & CaRolloverOptions = {}): Promise<E2eBroker> {
  softHsmDir();
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-e2e-'));
  const suffix = randomBytes(3).toString('hex');
  const plan = join(dir, 'ceremony.yaml');
  writeFileSync(
    plan,
    `version: 1
name: e2e
trustDomain: ${TRUST_DOMAIN}
root:
  token: { label: e2e-root-${suffix}, initialize: true }
  quorum: { shares: 1, threshold: 1 }
  officers: [ { name: test, share: { file: root-share } } ]
  key: { label: root, type: P-256, create: true }
  certificate: { subject: "CN=e2e root", validity: 30d, path: root.pem }
online:
  token: { label: e2e-online-${suffix}, initialize: true, pin: { file: online.pin }, soPin: { file: online-so.pin } }
  intermediate: { key: { label: intermediate, type: P-256 }, subject: "CN=e2e intermediate", validity: ${options.intermediateValidity ?? '20d'}, output: intermediate.pem }
  tokenSigning: { label: token-signing, type: P-256, publicKey: token-signing-key.pem }
  audit: { label: audit, type: P-256, publicKey: audit-key.pem }
transcript: transcript.jsonl
`,
  );
  const ceremonyAt = options.ceremonyAt;
  await runCeremony(plan, { outDir: dir }, { clock: { now: () => ceremonyAt ?? new Date() }, random: systemRandom, print: () => undefined });
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  const configPath = join(dir, 'broker.yaml');
  writeFileSync(
    configPath,
    `hsm:
  token: e2e-online-${suffix}
  pin: { file: online.pin }
  sessions: 4
ca:
  intermediateKey: intermediate
  intermediateCertificate: intermediate.pem
  roots: [root.pem]
server:
  listen: 127.0.0.1:0
  enrollRateLimit: { burst: ${options.enrollBurst ?? 1000}, perMinute: 60 }
store: ${options.store ?? '{ path: broker.db }'}
policy: policy.yaml
audit: { key: audit, checkpointEveryEntries: 50 }
tokens: { key: token-signing${options.nextKeyPublishFor === undefined ? '' : `, nextKeyPublishFor: ${options.nextKeyPublishFor}`} }
metrics: { listen: "${options.metricsListen ?? '127.0.0.1:0'}" }
`,
  );
  return openE2eBroker(dir, options);
}

/**
 * Starts a broker on the CA that {@link startE2eBroker} made in `dir` (its `broker.yaml`, as
 * the test may have edited it): a restart, e.g. with a renewed root's certificates listed.
 */
export async function openE2eBroker(dir: string, options: { logger?: Logger; keepDir?: boolean; storePassword?: Secret } = {}): Promise<E2eBroker> {
  const configPath = join(dir, 'broker.yaml');
  const config = loadConfigFile(configPath, brokerConfigSchema);
  const clock = new ShiftedClock();
  const pin = Secret.from(readFileSync(join(dir, 'online.pin'), 'utf8').trim());
  let broker: RunningBroker;
  try {
    broker = await startBroker(config, {
      clock,
      random: systemRandom,
      pin,
      configPath,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(options.storePassword === undefined ? {} : { storePassword: options.storePassword }),
    });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const address = `127.0.0.1:${broker.port}`;
  const rootPem = readFileSync(join(dir, 'root.pem'), 'utf8');
  const opened: BrokerClients[] = [];
  const track = (clients: BrokerClients): BrokerClients => {
    opened.push(clients);
    return clients;
  };
  const harness: E2eBroker = {
    dir,
    broker,
    clock,
    address,
    rootPem,
    configPath,
    anonymous: () => track(connectBroker({ address, trustBundlePem: rootPem, serverName: 'localhost' })),
    as: (identity) => track(connectBroker({ address, trustBundlePem: rootPem, serverName: 'localhost', clientKeyPem: identity.keyPem, clientCertificateChainPem: identity.certificatePem + identity.chainPem })),
    bootstrapToken: async (spiffeId, ttlMs = 900_000) => {
      const minted = mintJoinToken(systemRandom);
      const now = clock.now();
      await broker.store.transaction(async (tx) => {
        await tx.insertJoinToken({ id: minted.id, hash: minted.hash, spiffeId, createdBy: 'local:test', createdAt: now, expiresAt: new Date(now.getTime() + ttlMs), usedAt: null, usedForSerial: null });
        await new AuditLog().append(tx, { time: now, requestId: `test-${minted.id}`, actor: 'local:test', action: 'CreateJoinToken', outcome: 'allowed', subject: spiffeId, reason: '', details: { tokenId: minted.id } });
      });
      return minted.token;
    },
    enroll: async (joinToken, ttlSeconds = 0) => {
      const { keyPem, csrDer } = await newKeyAndCsr();
      const clients = track(connectBroker({ address, trustBundlePem: rootPem, serverName: 'localhost' }));
      const reply = await unary<{ certificatePem: string; chainPem: string; serial: string }>(clients.enrollment, 'Enroll', { joinToken, csr: Buffer.from(csrDer), ttlSeconds });
      return { keyPem, certificatePem: reply.certificatePem, chainPem: reply.chainPem, serial: reply.serial };
    },
    close: async () => {
      for (const clients of opened) clients.close();
      await broker.stop();
      // keepDir: the state (store, audit key, policy, config) stays for `credbroker report`.
      if (options.keepDir !== true) rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** Calls and expects a gRPC error; returns it. */
export async function grpcError(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}
