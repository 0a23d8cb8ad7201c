/**
 * The agent's loop against a fake broker, on a ManualClock and ManualScheduler: every timing
 * decision is checked by moving time, never by sleeping.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { AgentCore, type AgentCoreOptions, type JoinTokenSource, type ServiceIdentity } from '../../../src/agent/index.js';
import { BrokerError, ManualClock, ManualScheduler, Secret, type Logger } from '../../../src/core/index.js';
import { FakeTransport, fixedRandom, unauthenticated, unavailable } from './fake-transport.js';

const START = Date.UTC(2026, 0, 1, 12, 0, 0);
const JOIN_TOKEN = 'cbjt1-unit-test-join-token-value';

/** A join token source the test fills and empties. */
class TestJoinToken implements JoinTokenSource {
  readonly description = 'file:/test/join-token';
  value: string | null = JOIN_TOKEN;
  spentCount = 0;
  take(): Promise<Secret | null> {
    return Promise.resolve(this.value === null ? null : Secret.from(this.value, this.description));
  }
  spent(): void {
    this.spentCount++;
    this.value = null;
  }
}

/** A logger that keeps every call, to prove what never appears in logs. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const record = (level: string) => (fields: Record<string, unknown>, message: string) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields)}`);
  };
  return { lines, debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
}

function setup(options: Partial<AgentCoreOptions> & { u?: number } = {}) {
  const clock = new ManualClock(START);
  const scheduler = new ManualScheduler(clock);
  const transport = new FakeTransport(clock);
  const joinToken = new TestJoinToken();
  const logger = recordingLogger();
  const core = new AgentCore({ transport, clock, scheduler, random: fixedRandom(options.u ?? 0), joinToken, logger, watch: false, ...options });
  return { clock, scheduler, transport, joinToken, logger, core };
}

/** Collects the delays of 'retry' events of one stage. */
function retryDelays(core: AgentCore, stage: string): number[] {
  const delays: number[] = [];
  core.on('retry', (info) => {
    if (info.stage === stage) delays.push(info.delayMs);
  });
  return delays;
}

describe('agent/AgentCore', () => {
  describe('enrollment at start', () => {
    it('enrolls with the join token, spends it, and plans the renewal at 2/3 of the lifetime', async () => {
      const { core, transport, joinToken, clock } = setup();
      const enrolled = once(core, 'enrolled');
      await core.start();
      const [identity] = (await enrolled) as [ServiceIdentity];
      expect(transport.tokens).to.deep.equal([JOIN_TOKEN]);
      expect(joinToken.spentCount).to.equal(1);
      expect(core.identity).to.equal(identity);
      const lifetime = identity.notAfter.getTime() - identity.notBefore.getTime();
      expect(core.status()).to.include({ state: 'ready', serial: identity.serial, renewAtMs: identity.notBefore.getTime() + Math.floor((lifetime * 2) / 3), needsJoinToken: false });
      expect(core.status().counters.enrollments).to.equal(1);
      expect(clock.now().getTime()).to.equal(START);
      await core.stop();
      expect(transport.closed).to.equal(true);
    });

    it('the renewal time with the most jitter drawn is 2/3 − 10 % of the lifetime', async () => {
      const { core } = setup({ u: 0xff });
      await core.start();
      const identity = core.identity!;
      const lifetime = identity.notAfter.getTime() - identity.notBefore.getTime();
      const fraction = ((core.status().renewAtMs ?? 0) - identity.notBefore.getTime()) / lifetime;
      expect(fraction).to.be.closeTo(2 / 3 - 0.1, 0.0001);
      await core.stop();
    });

    it('without a certificate and without a join token: start fails saying a join token is needed and where', async () => {
      const { core, joinToken, transport } = setup();
      joinToken.value = null;
      let error: unknown;
      try {
        await core.start();
      } catch (caught) {
        error = caught;
      }
      expect(error).to.be.instanceOf(BrokerError);
      expect((error as BrokerError).code).to.equal('agent.join_token_needed');
      expect((error as BrokerError).publicMessage).to.contain('a new join token is needed').and.contain('file:/test/join-token');
      expect(transport.count('enroll')).to.equal(0);
      expect(core.status().state).to.equal('stopped');
    });

    it('a refused join token at start fails at once (UNAUTHENTICATED is not weather)', async () => {
      const { core, transport } = setup();
      transport.fail('enroll', unauthenticated('the join token was already used'));
      let error: unknown;
      try {
        await core.start();
      } catch (caught) {
        error = caught;
      }
      expect((error as BrokerError).publicMessage).to.contain('already used');
      expect(core.status().needsJoinToken).to.equal(true);
    });

    it('the broker down at start: start resolves, retries back off 1 s, 2 s, 4 s, then it enrolls', async () => {
      const { core, transport, scheduler, joinToken } = setup();
      transport.fail('enroll', unavailable(), 3);
      const delays = retryDelays(core, 'enroll');
      await core.start();
      expect(core.identity).to.equal(null);
      expect(core.status()).to.include({ state: 'backing_off', consecutiveFailures: 1 });
      const enrolled = once(core, 'enrolled');
      for (let i = 0; i < 5 && core.identity === null; i++) await scheduler.runNext();
      await enrolled;
      expect(delays).to.deep.equal([1_000, 2_000, 4_000]);
      expect(transport.count('enroll')).to.equal(4);
      expect(joinToken.spentCount).to.equal(1);
      expect(core.status()).to.include({ state: 'ready', consecutiveFailures: 0, lastError: null });
      expect(core.status().counters.enrollmentFailures).to.equal(3);
      await core.stop();
    });
  });

  describe('renewal', () => {
    it('renews at the planned time, not a millisecond before, with a new identity', async () => {
      const { core, scheduler, clock, transport } = setup();
      await core.start();
      const first = core.identity!;
      const renewAt = core.status().renewAtMs!;
      await scheduler.advance(renewAt - clock.now().getTime() - 1);
      expect(transport.count('renew')).to.equal(0);
      const renewed = once(core, 'renewed');
      await scheduler.advance(1);
      const [identity, info] = (await renewed) as [ServiceIdentity, { forced: boolean; previousSerial: string }];
      expect(info).to.deep.equal({ forced: false, previousSerial: first.serial });
      expect(identity.serial).to.not.equal(first.serial);
      expect(transport.renewedFrom).to.deep.equal([first.serial]);
      expect(core.status().counters).to.include({ renewals: 1, enrollments: 1 });
      await core.stop();
    });

    it('asks for the configured TTL on every enroll and renew', async () => {
      const { core, scheduler, transport } = setup({ ttlSeconds: 900 });
      await core.start();
      await scheduler.runNext();
      expect(transport.ttls).to.deep.equal([900, 900]);
      await core.stop();
    });

    it('on failure backs off 1 s, 2 s, 4 s … up to 60 s, keeping the current certificate; success resets', async () => {
      const { core, scheduler, transport, clock } = setup();
      transport.lifetimeSeconds = 24 * 3600;
      await core.start();
      const first = core.identity!;
      transport.fail('renew', unavailable(), 9);
      const delays = retryDelays(core, 'renew');
      await scheduler.advance(core.status().renewAtMs! - clock.now().getTime());
      for (let i = 0; i < 20 && transport.count('renew') < 10; i++) {
        expect(core.identity, 'the current certificate stays in use').to.equal(first);
        await scheduler.runNext();
      }
      expect(delays).to.deep.equal([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
      expect(core.identity!.serial).to.not.equal(first.serial);
      expect(core.status()).to.include({ consecutiveFailures: 0, state: 'ready' });
      expect(core.status().counters.renewalFailures).to.equal(9);
      await core.stop();
    });

    it('warns once, loudly, when the certificate nears expiry unrenewed', async () => {
      const { core, scheduler, transport, clock, logger } = setup();
      await core.start();
      const identity = core.identity!;
      transport.fail('renew', unavailable(), 1_000);
      const warnings: number[] = [];
      core.on('expiring', (info) => warnings.push(info.msLeft));
      await scheduler.advance(identity.notAfter.getTime() - 600_000 - clock.now().getTime() - 1);
      expect(warnings).to.deep.equal([]);
      expect(core.status().expiringSoon).to.equal(false);
      await scheduler.advance(120_000);
      expect(warnings).to.deep.equal([600_000]);
      expect(core.status().expiringSoon).to.equal(true);
      expect(logger.lines.filter((line) => line.startsWith('warn the certificate expires soon'))).to.have.length(1);
      await core.stop();
    });

    it('revoked (Renew UNAUTHENTICATED): says a new join token is needed, and enrolls once one appears', async () => {
      const { core, scheduler, transport, joinToken, clock, logger } = setup();
      await core.start();
      transport.fail('renew', unauthenticated('the client certificate (serial 10) is revoked; recovery needs a new join token'));
      const needs = once(core, 'needs-join-token');
      await scheduler.advance(core.status().renewAtMs! - clock.now().getTime());
      const [message] = (await needs) as [string];
      expect(message).to.contain('revoked').and.contain('A NEW JOIN TOKEN IS NEEDED').and.contain('file:/test/join-token');
      expect(core.status()).to.include({ needsJoinToken: true, state: 'needs_join_token' });
      expect(logger.lines.some((line) => line.startsWith('error') && line.includes('A NEW JOIN TOKEN IS NEEDED'))).to.equal(true);
      // Retries find no token yet; an operator puts one in place.
      await scheduler.runNext();
      expect(transport.count('enroll')).to.equal(1);
      joinToken.value = 'cbjt1-the-second-token';
      const enrolled = once(core, 'enrolled');
      for (let i = 0; i < 5 && core.status().needsJoinToken; i++) await scheduler.runNext();
      await enrolled;
      expect(transport.tokens).to.deep.equal([JOIN_TOKEN, 'cbjt1-the-second-token']);
      expect(core.status()).to.include({ needsJoinToken: false, state: 'ready' });
      await core.stop();
    });

    it('an expired certificate is reported, and only a join token can replace it', async () => {
      const { core, scheduler, transport, joinToken, clock } = setup();
      await core.start();
      const identity = core.identity!;
      transport.fail('renew', unavailable(), 10_000);
      const expired = once(core, 'expired');
      const needs = once(core, 'needs-join-token');
      await scheduler.advance(identity.notAfter.getTime() - clock.now().getTime());
      await expired;
      await needs;
      expect(core.status()).to.include({ expired: true, needsJoinToken: true });
      const renewsBefore = transport.count('renew');
      joinToken.value = 'cbjt1-after-expiry';
      const enrolled = once(core, 'enrolled');
      for (let i = 0; i < 5 && core.status().needsJoinToken; i++) await scheduler.runNext();
      await enrolled;
      expect(transport.count('renew'), 'an expired certificate is never sent to Renew').to.equal(renewsBefore);
      expect(core.status()).to.include({ expired: false, needsJoinToken: false });
      await core.stop();
    });

    it('the identity hook runs before the event; a failing hook keeps the identity in memory and retries', async () => {
      const seen: string[] = [];
      let failHook = false;
      const { core, scheduler, clock } = setup({
        onIdentity: (identity, change) => {
          seen.push(`${change}:${identity.serial}`);
          if (failHook) throw new BrokerError('unavailable', { code: 'agent.write', publicMessage: 'cannot write /x/cert.pem: disk full' });
        },
      });
      core.on('enrolled', (identity) => seen.push(`event:${identity.serial}`));
      await core.start();
      expect(seen).to.deep.equal([`enrolled:${core.identity!.serial}`, `event:${core.identity!.serial}`]);
      failHook = true;
      const errors: string[] = [];
      core.on('failure', (error, stage) => errors.push(`${stage}:${error.code}`));
      const retried = once(core, 'retry');
      await scheduler.advance(core.status().renewAtMs! - clock.now().getTime());
      const [info] = (await retried) as [{ stage: string; delayMs: number }];
      expect(info).to.include({ stage: 'persist', delayMs: 1_000 });
      expect(errors).to.deep.equal(['persist:agent.persist']);
      const inMemory = core.identity!;
      expect(seen.at(-1)).to.equal(`renewed:${inMemory.serial}`);
      failHook = false;
      const renewed = once(core, 'renewed');
      await scheduler.advance(1_000);
      await renewed;
      expect(core.identity!.serial).to.not.equal(inMemory.serial);
      expect(core.status().counters.persistFailures).to.equal(1);
      await core.stop();
    });
  });

  describe('Watch', () => {
    it('opens a stream with the current certificate and reports WATCHING', async () => {
      const { core, transport } = setup({ watch: true });
      await core.start();
      expect(transport.openWatch?.serial).to.equal(core.identity!.serial);
      const watching = once(core, 'watching');
      transport.push({ kind: 'WATCHING' });
      await watching;
      expect(core.status().watching).to.equal(true);
      expect(core.status().counters.watchConnects).to.equal(1);
      await core.stop();
      expect(transport.watches.every((watch) => watch.cancelled)).to.equal(true);
    });

    it('RENEW_NOW renews at once, long before the renewal time, and Watch reconnects with the new certificate', async () => {
      const { core, transport } = setup({ watch: true });
      await core.start();
      const first = core.identity!;
      transport.push({ kind: 'WATCHING' });
      const renewed = once(core, 'renewed');
      transport.push({ kind: 'RENEW_NOW', serial: first.serial, rotationId: 'rot-1', reason: 'REVOCATION_REASON_SUPERSEDED' });
      const [identity, info] = (await renewed) as [ServiceIdentity, { forced: boolean }];
      expect(info.forced).to.equal(true);
      expect(transport.openWatch?.serial).to.equal(identity.serial);
      expect(transport.watches.filter((watch) => watch.serial === first.serial).every((watch) => watch.cancelled)).to.equal(true);
      expect(core.status().counters.forcedRenewals).to.equal(1);
      await core.stop();
    });

    it('RENEW_NOW for another serial is ignored', async () => {
      const { core, transport, scheduler } = setup({ watch: true });
      await core.start();
      transport.push({ kind: 'RENEW_NOW', serial: 'ffff' });
      await scheduler.advance(0);
      expect(transport.count('renew')).to.equal(0);
      await core.stop();
    });

    it('a dropped stream reconnects with backoff 1 s, 2 s, 4 s; WATCHING resets the backoff', async () => {
      const { core, transport, scheduler } = setup({ watch: true });
      const delays = retryDelays(core, 'watch');
      await core.start();
      for (let i = 0; i < 3; i++) {
        transport.endWatch(unavailable('stream reset'));
        await scheduler.runNext();
      }
      expect(delays).to.deep.equal([1_000, 2_000, 4_000]);
      expect(transport.count('watch')).to.equal(4);
      transport.push({ kind: 'WATCHING' });
      transport.endWatch(null);
      await scheduler.runNext();
      expect(delays).to.deep.equal([1_000, 2_000, 4_000, 1_000]);
      expect(transport.openWatch).to.not.equal(undefined);
      expect(core.status().counters.watchDrops).to.equal(4);
      await core.stop();
    });

    it('Watch refusing the certificate (UNAUTHENTICATED) triggers a renewal attempt', async () => {
      const { core, transport } = setup({ watch: true });
      await core.start();
      const renewed = once(core, 'renewed');
      transport.endWatch(unauthenticated());
      await renewed;
      expect(transport.count('renew')).to.equal(1);
      await core.stop();
    });

    it('TRUST_BUNDLE_CHANGED fetches the bundle and hands the new identity to the hook', async () => {
      const changes: string[] = [];
      const { core, transport } = setup({ watch: true, onIdentity: (identity, change) => void changes.push(`${change}:${identity.trustBundlePem}`) });
      await core.start();
      const serial = core.identity!.serial;
      transport.trustBundlePem = 'ROOTS-2';
      const updated = once(core, 'trust-bundle');
      transport.push({ kind: 'TRUST_BUNDLE_CHANGED' });
      await updated;
      expect(core.identity).to.include({ trustBundlePem: 'ROOTS-2', serial });
      expect(changes).to.deep.equal(['enrolled:ROOTS-1', 'trust-bundle:ROOTS-2']);
      expect(core.status().counters.trustBundleUpdates).to.equal(1);
      await core.stop();
    });
  });

  describe('runOnce (--once)', () => {
    it('enrolls, then does nothing while not due, then renews once due; a failure is thrown, not retried', async () => {
      const { core, clock, transport } = setup();
      expect((await core.runOnce()).action).to.equal('enrolled');
      expect((await core.runOnce()).action).to.equal('none');
      clock.advance(core.status().renewAtMs! - clock.now().getTime());
      expect((await core.runOnce()).action).to.equal('renewed');
      transport.fail('renew', unavailable('broker down'));
      clock.advance(core.status().renewAtMs! - clock.now().getTime());
      let error: unknown;
      try {
        await core.runOnce();
      } catch (caught) {
        error = caught;
      }
      expect((error as BrokerError).publicMessage).to.contain('broker down');
      expect(core.status().retryAtMs, 'no retry is scheduled by --once').to.equal(null);
    });
  });

  it('logs name serials and sources, never the join token or key material', async () => {
    const { core, scheduler, transport, clock, logger } = setup({ watch: true });
    transport.fail('enroll', unavailable());
    await core.start();
    await scheduler.runNext();
    transport.fail('renew', unauthenticated());
    await scheduler.advance(core.status().renewAtMs! - clock.now().getTime());
    await core.stop();
    expect(logger.lines.length).to.be.greaterThan(3);
    for (const line of logger.lines) {
      expect(line).to.not.contain(JOIN_TOKEN);
      expect(line).to.not.contain('PRIVATE KEY');
      expect(line).to.not.contain('CERT ');
    }
  });
});
