/**
 * Two `credbroker serve` processes on one PostgreSQL (started by this file in a temp folder) and
 * one SoftHSM token (issue 8): a certificate enrolled on one is renewed on the other; a
 * revocation made on one is refused by the other within the stated bound (the revocation poll
 * interval plus one poll); 500 concurrent redemptions of one join token spread over both brokers
 * give exactly one certificate; and the one audit chain both wrote verifies with its signed
 * checkpoints through `credbroker audit verify --store-config`.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connectBroker, newKeyAndCsr, unary, type BrokerClients } from '../../src/agent/index.js';
import { AuditLog } from '../../src/audit/index.js';
import { mintJoinToken } from '../../src/server/index.js';
import { systemRandom } from '../../src/core/index.js';
import { PostgresStore } from '../../src/store/index.js';
import { CLI_PATH, runCli } from '../helpers/cli.js';
import { buildCsr } from '../helpers/csr-builder.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { IMPORT, OPERATOR, startE2eBroker, type ClientIdentity, type E2eBroker } from './harness.js';

/** The brokers' `store.revocationPollInterval` in this test. */
const POLL_INTERVAL_MS = 1_000;
/** The stated bound: one interval, plus one poll's transaction and the call (generous for CI). */
const REVOCATION_BOUND_MS = POLL_INTERVAL_MS + 2_000;
const REDEMPTIONS = 500;

interface BrokerProcess {
  readonly child: ChildProcess;
  readonly address: string;
  stderr(): string;
}

/** Starts `credbroker serve` and resolves once it prints its address. */
function serve(configPath: string): Promise<BrokerProcess> {
  const child = spawn(process.execPath, [CLI_PATH, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /listening on (127\.0\.0\.1:\d+)/.exec(stdout);
      if (match?.[1] !== undefined) resolve({ child, address: match[1], stderr: () => stderr });
    });
    child.on('exit', (code) => {
      reject(new Error(`serve exited early (${String(code)}): ${stderr}`));
    });
  });
}

/** Sends SIGTERM and resolves with the exit code. */
function stop(proc: BrokerProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => proc.child.on('exit', resolve));
  proc.child.kill('SIGTERM');
  return exited;
}

describe('e2e: two broker processes on one PostgreSQL', function () {
  this.timeout(180_000);
  let server: TestPostgres;
  let e2e: E2eBroker;
  let store: PostgresStore;
  let database: string;
  const brokers: BrokerProcess[] = [];
  const opened: BrokerClients[] = [];

  before(async () => {
    server = await startTestPostgres();
    database = await server.createDatabase('brokers');
    const storeYaml = `{ kind: postgres, host: "${server.socketDir}", port: ${server.port}, database: ${database}, user: ${server.user}, password: { file: "${server.passwordFile}" }, revocationPollInterval: ${POLL_INTERVAL_MS}ms }`;
    // The harness makes the CA, policy and config (and migrates the database); its in-process
    // broker is stopped so that the two processes are alone with the store.
    e2e = await startE2eBroker({ enrollBurst: 5_000, store: storeYaml, storePassword: server.password });
    await e2e.broker.stop();
    brokers.push(await serve(e2e.configPath), await serve(e2e.configPath));
    // The test's own connection, to mint join tokens as `credbroker bootstrap-operator` does.
    store = await PostgresStore.open(server.connection(database));
  });

  after(async () => {
    for (const clients of opened) clients.close();
    for (const proc of brokers) proc.child.kill('SIGKILL');
    if ((store as PostgresStore | undefined) !== undefined) await store.close().catch(() => undefined);
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close().catch(() => undefined);
    (server as TestPostgres | undefined)?.stop();
  });

  const clientsOf = (proc: BrokerProcess, identity?: ClientIdentity): BrokerClients => {
    const clients = connectBroker({
      address: proc.address,
      trustBundlePem: e2e.rootPem,
      serverName: 'localhost',
      ...(identity === undefined ? {} : { clientKeyPem: identity.keyPem, clientCertificateChainPem: identity.certificatePem + identity.chainPem }),
    });
    opened.push(clients);
    return clients;
  };

  async function joinToken(spiffeId: string): Promise<string> {
    const minted = mintJoinToken(systemRandom);
    const now = new Date();
    await store.transaction(async (tx) => {
      await tx.insertJoinToken({ id: minted.id, hash: minted.hash, spiffeId, createdBy: 'local:test', createdAt: now, expiresAt: new Date(now.getTime() + 900_000), usedAt: null, usedForSerial: null });
      await new AuditLog().append(tx, { time: now, requestId: `test-${minted.id}`, actor: 'local:test', action: 'CreateJoinToken', outcome: 'allowed', subject: spiffeId, reason: '', details: { tokenId: minted.id } });
    });
    return minted.token;
  }

  async function enrollOn(proc: BrokerProcess, token: string): Promise<ClientIdentity> {
    const { keyPem, csrDer } = await newKeyAndCsr();
    const reply = await unary<{ certificatePem: string; chainPem: string; serial: string }>(clientsOf(proc).enrollment, 'Enroll', { joinToken: token, csr: Buffer.from(csrDer) });
    return { keyPem, certificatePem: reply.certificatePem, chainPem: reply.chainPem, serial: reply.serial };
  }

  it('enroll on one broker, renew on the other; a revocation on one is refused by the other within the bound', async () => {
    const [a, b] = [brokers[0]!, brokers[1]!];
    const service = await enrollOn(a, await joinToken(IMPORT));
    const { keyPem, csrDer } = await newKeyAndCsr();
    const renewed = await unary<{ serial: string; certificatePem: string; chainPem: string }>(clientsOf(b, service).certificates, 'Renew', { csr: Buffer.from(csrDer) });
    expect(renewed.serial).to.not.equal(service.serial);
    const current: ClientIdentity = { keyPem, certificatePem: renewed.certificatePem, chainPem: renewed.chainPem, serial: renewed.serial };
    const record = await store.transaction((tx) => tx.getCertificate(renewed.serial));
    expect(record?.renewedFrom, 'one store: the renewal names the certificate issued by the other broker').to.equal(service.serial);

    // Both brokers serve the renewed identity before the revocation.
    const onB = clientsOf(b, current);
    await unary(onB.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'] });

    const operator = await enrollOn(b, await joinToken(OPERATOR));
    await unary(clientsOf(a, operator).certificates, 'Revoke', { serial: current.serial, reason: 'REVOCATION_REASON_KEY_COMPROMISE' });
    const revokedAt = Date.now();

    // Broker B learns of it from the store: poll it (bounded) until it refuses the certificate.
    let refusal: grpc.ServiceError | null = null;
    while (refusal === null && Date.now() - revokedAt < REVOCATION_BOUND_MS + 5_000) {
      refusal = await unary(onB.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'] }).then(
        () => null,
        (error: unknown) => error as grpc.ServiceError,
      );
    }
    const learnedMs = Date.now() - revokedAt;
    expect(refusal, 'broker B refuses the revoked certificate').to.not.equal(null);
    expect(refusal?.code).to.equal(grpc.status.UNAUTHENTICATED);
    expect(refusal?.metadata.get('x-error-code').join()).to.equal('peer.revoked');
    expect(learnedMs, `refused ${learnedMs} ms after the revocation`).to.be.at.most(REVOCATION_BOUND_MS);
    // The broker that revoked refuses at once, and Renew checks the store on either broker.
    const onA = await unary(clientsOf(a, current).tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'] }).then(
      () => null,
      (error: unknown) => error as grpc.ServiceError,
    );
    expect(onA?.metadata.get('x-error-code').join()).to.equal('peer.revoked');
  });

  it(`${REDEMPTIONS} concurrent redemptions of one join token spread over both brokers: exactly one certificate`, async () => {
    const token = await joinToken(IMPORT);
    const tokenId = token.split('-')[1] ?? '';
    const csrs = Array.from({ length: REDEMPTIONS }, () => buildCsr(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey));
    const channels = brokers.flatMap((proc) => Array.from({ length: 4 }, () => clientsOf(proc)));
    const settled = await Promise.allSettled(csrs.map((csr, i) => unary<{ serial: string }>(channels[i % channels.length]!.enrollment, 'Enroll', { joinToken: token, csr })));
    const winners = settled.filter((r): r is PromiseFulfilledResult<{ serial: string }> => r.status === 'fulfilled').map((r) => r.value.serial);
    const errors = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as grpc.ServiceError);
    expect(winners, 'exactly one success').to.have.length(1);
    expect([...new Set(errors.map((error) => `${grpc.status[error.code]} ${error.metadata.get('x-error-code').join()}`))]).to.deep.equal(['UNAUTHENTICATED join_token.used']);

    const used = await store.transaction(async (tx) => {
      const all = [];
      let pageToken = '';
      do {
        const page = await tx.queryAudit({ action: 'Enroll' }, 1000, pageToken);
        all.push(...page.items.filter((entry) => entry.details.tokenId === tokenId));
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
      return all;
    });
    expect(used.filter((entry) => entry.outcome === 'allowed').map((entry) => entry.details.serial)).to.deep.equal(winners);
    expect(used.filter((entry) => entry.outcome === 'denied')).to.have.length(REDEMPTIONS - 1);
  });

  it('both stop cleanly with a final checkpoint; the one audit chain they wrote verifies with `credbroker audit verify --store-config`', async () => {
    for (const proc of brokers.splice(0)) expect(await stop(proc), proc.stderr()).to.equal(0);
    const head = await store.transaction(async (tx) => ({ last: await tx.lastAuditEntry(), checkpoint: await tx.lastAuditCheckpoint() }));
    expect(head.checkpoint?.seq, 'the last checkpoint covers the whole log').to.equal(head.last?.seq);
    const result = await runCli(['audit', 'verify', '--store-config', e2e.configPath, '--audit-key', join(e2e.dir, 'audit-key.pem'), '--json']);
    expect(result.status, result.stderr).to.equal(0);
    const report = JSON.parse(result.stdout) as { ok: boolean; entries: number; headSeq: number; signaturesChecked: boolean; lastCheckpointSeq: number };
    expect(report).to.include({ ok: true, entries: head.last?.seq, headSeq: head.last?.seq, signaturesChecked: true, lastCheckpointSeq: head.last?.seq });
  });
});
