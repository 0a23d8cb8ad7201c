/**
 * `credbroker agent` (the Agent class, in process) against the real broker: enrollment with a
 * join token file, reuse after a restart, renewal before expiry (the broker's ShiftedClock moved
 * with the agent's scheduler, never a sleep), a broker that is down at start, RENEW_NOW over
 * Watch, a dropped Watch stream, and recovery from a revocation with a new join token.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, agentConfigSchema, agentSettings, unary, type BrokerClients } from '../../src/agent/index.js';
import { parseConfig } from '../../src/config/index.js';
import { ManualClock, ManualScheduler, systemRandom, type AdvanceableClock } from '../../src/core/index.js';
import { BLUR, IMPORT, OPERATOR, startE2eBroker, type E2eBroker, type ShiftedClock } from './harness.js';

/** The broker's ShiftedClock as a clock the agent's ManualScheduler can move: both see the same time. */
function sharedClock(clock: ShiftedClock): AdvanceableClock {
  return {
    now: () => clock.now(),
    advance: (ms: number) => {
      clock.offsetMs += ms;
    },
  };
}

/** A folder with the agent's config, the broker's root and (optionally) a join token file. */
function agentDir(e2e: { rootPem: string }, address: string, extra = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-e2e-agent-'));
  writeFileSync(join(dir, 'root.pem'), e2e.rootPem);
  writeFileSync(
    join(dir, 'agent.yaml'),
    `broker: { address: ${address}, serverName: localhost, trustBundle: root.pem }
joinToken: { file: join-token }
output: { dir: out }
${extra}`,
  );
  return dir;
}

function writeJoinToken(dir: string, token: string): void {
  writeFileSync(join(dir, 'join-token'), `${token}\n`, { mode: 0o600 });
}

async function makeAgent(dir: string, clock: AdvanceableClock, scheduler: ManualScheduler): Promise<Agent> {
  const text = readFileSync(join(dir, 'agent.yaml'), 'utf8');
  const config = parseConfig(text, agentConfigSchema, join(dir, 'agent.yaml'), { baseDir: dir });
  return Agent.create(agentSettings(config, dir), { clock, scheduler, random: systemRandom });
}

/** A TCP relay in front of the broker whose connections the test can cut. */
async function startRelay(targetPort: number, listenPort = 0): Promise<{ port: number; dropAll(): void; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    dropAll: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => { resolve(); });
      }),
  };
}

describe('e2e: credbroker agent', function () {
  this.timeout(60_000);
  let e2e: E2eBroker;
  let ops: BrokerClients;
  const cleanup: (() => Promise<void> | void)[] = [];

  before(async () => {
    e2e = await startE2eBroker();
    ops = e2e.as(await e2e.enroll(await e2e.bootstrapToken(OPERATOR)));
  });

  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
    e2e.clock.offsetMs = 0;
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  /** Creates an agent for BLUR with a fresh join token; stopped and removed after the test. */
  async function blurAgent(extra = 'watch: false\n', address = e2e.address): Promise<{ agent: Agent; dir: string; scheduler: ManualScheduler }> {
    const dir = agentDir(e2e, address, extra);
    writeJoinToken(dir, await e2e.bootstrapToken(BLUR));
    const clock = sharedClock(e2e.clock);
    const scheduler = new ManualScheduler(clock);
    const agent = await makeAgent(dir, clock, scheduler);
    cleanup.push(async () => {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    return { agent, dir, scheduler };
  }

  it('enrolls with the join token file, deletes it, writes the files; a restart reuses the certificate', async () => {
    const { agent, dir } = await blurAgent();
    const enrolled = once(agent.events, 'enrolled');
    await agent.start();
    await enrolled;
    const identity = agent.identity!;
    expect(identity.spiffeId).to.equal(BLUR);
    expect(existsSync(join(dir, 'join-token')), 'the spent join token file is deleted').to.equal(false);
    expect(statSync(join(dir, 'out', 'key.pem')).mode & 0o777).to.equal(0o600);
    expect(readFileSync(join(dir, 'out', 'bundle.pem'), 'utf8')).to.equal(e2e.rootPem);
    const recorded = await unary<{ spiffeId: string; certificatePem: string }>(ops.certificates, 'GetCertificate', { serial: identity.serial });
    expect(recorded.spiffeId).to.equal(BLUR);
    expect(readFileSync(join(dir, 'out', 'cert.pem'), 'utf8').trim()).to.equal(recorded.certificatePem.trim());
    await agent.stop();

    const clock = sharedClock(e2e.clock);
    const again = await makeAgent(dir, clock, new ManualScheduler(clock));
    cleanup.push(() => again.stop());
    let enrolledAgain = false;
    again.events.on('enrolled', () => (enrolledAgain = true));
    await again.start();
    expect(enrolledAgain, 'no join token is needed while the certificate is valid').to.equal(false);
    expect(again.identity?.serial).to.equal(identity.serial);
    expect(again.status().state).to.equal('ready');
  });

  for (const keyType of ['P-384', 'Ed25519'] as const) {
    it(`keyType ${keyType}: enrolls, asks for the DNS name policy allows, and renews over mutual TLS with that key`, async () => {
      const dir = agentDir(e2e, e2e.address, `watch: false\nkeyType: ${keyType}\ndnsNames: [import.pipeline.internal]\n`);
      writeJoinToken(dir, await e2e.bootstrapToken(IMPORT));
      const clock = sharedClock(e2e.clock);
      const agent = await makeAgent(dir, clock, new ManualScheduler(clock));
      cleanup.push(async () => {
        await agent.stop();
        rmSync(dir, { recursive: true, force: true });
      });
      expect((await agent.runOnce()).action).to.equal('enrolled');
      const certificate = new X509Certificate(readFileSync(join(dir, 'out', 'cert.pem')));
      expect(certificate.publicKey.asymmetricKeyType).to.equal(keyType === 'Ed25519' ? 'ed25519' : 'ec');
      expect(certificate.subjectAltName).to.contain('DNS:import.pipeline.internal').and.contain(`URI:${IMPORT}`);
      await agent.renewNow();
      expect(agent.status().counters.renewals, agent.status().lastError ?? '').to.equal(1);
      expect(new X509Certificate(readFileSync(join(dir, 'out', 'cert.pem'))).serialNumber.toLowerCase()).to.equal(agent.identity!.serial);
    });
  }

  it('renews before expiry with a new key: the shared clock moved to the renewal time, no sleeping', async () => {
    const { agent, dir, scheduler } = await blurAgent('watch: false\nttl: 60s\n');
    await agent.start();
    const first = agent.identity!;
    const firstKey = readFileSync(join(dir, 'out', 'key.pem'), 'utf8');
    const renewAt = agent.status().renewAtMs!;
    // A 60 s certificate is backdated 60 s: renewal falls 20 s (at most) from now.
    expect(renewAt - e2e.clock.now().getTime()).to.be.within(0, 21_000);
    const renewed = once(agent.events, 'renewed');
    await scheduler.advance(renewAt - e2e.clock.now().getTime());
    await renewed;
    const second = agent.identity!;
    expect(second.serial).to.not.equal(first.serial);
    expect(second.notAfter.getTime()).to.be.greaterThan(first.notAfter.getTime());
    expect(readFileSync(join(dir, 'out', 'key.pem'), 'utf8')).to.not.equal(firstKey);
    expect(readFileSync(join(dir, 'out', 'cert.pem'), 'utf8')).to.equal(second.certificatePem);
    const info = await unary<{ renewedFrom: string }>(ops.certificates, 'GetCertificate', { serial: second.serial });
    expect(info.renewedFrom).to.equal(first.serial);
  });

  it('the broker unreachable at agent start: backs off (1 s, then 2 s), then enrolls once its port answers', async () => {
    // Reserve a port, start the agent on it (connection refused), then make the broker reachable
    // there. The broker itself is the suite's (its CA is the agent's bootstrap root); a relay on
    // the reserved port stands for "the broker starts listening".
    const reserved = net.createServer();
    await new Promise<void>((resolve) => reserved.listen(0, '127.0.0.1', resolve));
    const port = (reserved.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => reserved.close(() => { resolve(); }));

    const dir = agentDir(e2e, `127.0.0.1:${port}`, 'watch: false\n');
    writeJoinToken(dir, await e2e.bootstrapToken(BLUR));
    const clock = new ManualClock(Date.now());
    const scheduler = new ManualScheduler(clock);
    const agent = await makeAgent(dir, clock, scheduler);
    cleanup.push(async () => {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const retries: { delayMs: number; kind: string }[] = [];
    agent.events.on('retry', (retry) => retries.push({ delayMs: retry.delayMs, kind: retry.error.kind }));

    await agent.start();
    expect(agent.identity).to.equal(null);
    expect(agent.status().state).to.equal('backing_off');
    await scheduler.advance(1_000);
    expect(retries).to.deep.equal([
      { delayMs: 1_000, kind: 'unavailable' },
      { delayMs: 2_000, kind: 'unavailable' },
    ]);
    expect(existsSync(join(dir, 'join-token')), 'the token is kept while it was not used').to.equal(true);

    const relay = await startRelay(e2e.broker.port, port);
    cleanup.push(() => relay.close());
    const enrolled = once(agent.events, 'enrolled');
    await scheduler.advance(2_000);
    await enrolled;
    expect(agent.identity?.spiffeId).to.equal(BLUR);
    expect(agent.status()).to.include({ state: 'ready', consecutiveFailures: 0 });
    expect(existsSync(join(dir, 'join-token'))).to.equal(false);
  });

  it('RENEW_NOW (an operator\'s ForceRotate) renews at once with a new key; Watch comes back on the new certificate', async () => {
    const { agent, dir } = await blurAgent('watch: true\n');
    const watching = once(agent.events, 'watching');
    await agent.start();
    await watching;
    const first = agent.identity!;
    const firstKey = readFileSync(join(dir, 'out', 'key.pem'), 'utf8');
    const renewed = once(agent.events, 'renewed');
    const rotation = await unary<{ rotationId: string; connected: number }>(ops.rotation, 'ForceRotate', { selector: BLUR });
    expect(rotation.connected).to.be.at.least(1);
    const [second, info] = (await renewed) as [{ serial: string }, { forced: boolean; previousSerial: string }];
    expect(info).to.deep.equal({ forced: true, previousSerial: first.serial });
    expect(readFileSync(join(dir, 'out', 'key.pem'), 'utf8')).to.not.equal(firstKey);
    await once(agent.events, 'watching');
    expect(agent.status()).to.include({ watching: true, serial: second.serial });
    const old = await unary<{ revocationReason: string }>(ops.certificates, 'GetCertificate', { serial: first.serial });
    expect(old.revocationReason).to.equal('REVOCATION_REASON_SUPERSEDED');
    expect(agent.status().counters.forcedRenewals).to.equal(1);
  });

  it('a dropped Watch stream reconnects after its backoff', async () => {
    const relay = await startRelay(e2e.broker.port);
    cleanup.push(() => relay.close());
    const { agent, scheduler } = await blurAgent('watch: true\n', `127.0.0.1:${relay.port}`);
    const watching = once(agent.events, 'watching');
    await agent.start();
    await watching;
    const ended = once(agent.events, 'watch-ended');
    const retry = once(agent.events, 'retry');
    relay.dropAll();
    const [error] = (await ended) as [{ kind: string } | null];
    expect(error?.kind).to.equal('unavailable');
    const [info] = (await retry) as [{ stage: string; delayMs: number }];
    expect(info).to.include({ stage: 'watch', delayMs: 1_000 });
    expect(agent.status().watching).to.equal(false);
    const back = once(agent.events, 'watching');
    await scheduler.advance(info.delayMs);
    await back;
    expect(agent.status()).to.include({ watching: true });
    expect(agent.status().counters).to.include({ watchConnects: 2, watchDrops: 1 });
  });

  it('a revoked certificate: says a new join token is needed, and enrolls with one put in place', async () => {
    const { agent, dir, scheduler } = await blurAgent();
    await agent.start();
    const first = agent.identity!;
    await unary(ops.certificates, 'Revoke', { serial: first.serial, reason: 'REVOCATION_REASON_KEY_COMPROMISE' });
    const needs = once(agent.events, 'needs-join-token');
    await agent.renewNow();
    const [message] = (await needs) as [string];
    expect(message).to.contain('revoked').and.contain('A NEW JOIN TOKEN IS NEEDED').and.contain(join(dir, 'join-token'));
    expect(agent.status()).to.include({ needsJoinToken: true, serial: first.serial });
    writeJoinToken(dir, await e2e.bootstrapToken(BLUR));
    const enrolled = once(agent.events, 'enrolled');
    await scheduler.advance(agent.status().retryAtMs! - e2e.clock.now().getTime());
    await enrolled;
    expect(agent.identity!.serial).to.not.equal(first.serial);
    expect(agent.status()).to.include({ needsJoinToken: false, state: 'ready' });
    expect(existsSync(join(dir, 'join-token'))).to.equal(false);
  });
});
