/**
 * The service side of credbroker in memory: enroll with a join token, renew at a jittered
 * fraction of the certificate's life with a new key each time, back off on failure while the
 * current certificate stays in use, listen on Rotation/Watch for "renew now" and trust-bundle
 * changes, and say loudly when expiry nears or a new join token is needed.
 *
 * Both the `credbroker agent` daemon ({@link Agent}, which writes files) and the embeddable
 * {@link ServiceCredentials} (which hot-swaps TLS in process) run on this one class. Time comes
 * from the injected Clock and Scheduler; every decision is a function of `now`
 * (renewal-plan.ts); tests await the events instead of sleeping.
 */
import { EventEmitter } from 'node:events';
import { BrokerError, isBrokerError, silentLogger, type Clock, type Logger, type RandomSource, type ScheduledTask, type Scheduler } from '../core/index.js';
import type { BrokerTransport, WatchEvent, WatchStream } from './broker-transport.js';
import { newKeyAndCsr, type CsrNames, type ServiceKeyType } from './enroll.js';
import type { JoinTokenSource } from './join-token-source.js';
import { DEFAULT_RENEWAL_TIMING, backoffDelayMs, renewAtMs, uniformFraction, warnAtMs, type RenewalTiming } from './renewal-plan.js';
import { ServiceIdentity, type IssuedCertificate } from './service-identity.js';

/** Why the identity changed. */
export type IdentityChange = 'enrolled' | 'renewed' | 'trust-bundle';

/** What the agent is doing. */
export type AgentState = 'idle' | 'enrolling' | 'renewing' | 'ready' | 'backing_off' | 'needs_join_token' | 'stopped';

/** Counters since start (monotonic), for the metrics endpoint to export. */
export interface AgentCounters {
  enrollments: number;
  enrollmentFailures: number;
  renewals: number;
  /** Renewals the broker asked for (RENEW_NOW). */
  forcedRenewals: number;
  renewalFailures: number;
  /** Watch streams that reached WATCHING. */
  watchConnects: number;
  /** Watch streams that ended or failed. */
  watchDrops: number;
  trustBundleUpdates: number;
  /** Failures of the identity hook (e.g. writing files). */
  persistFailures: number;
}

/** A snapshot of the agent's state: gauges and counters (see {@link AgentCore.status}). */
export interface AgentStatus {
  readonly state: AgentState;
  readonly spiffeId: string | null;
  readonly serial: string | null;
  readonly notAfterMs: number | null;
  /** When the next scheduled renewal is due (jittered). */
  readonly renewAtMs: number | null;
  /** When the next retry is due after a failure; null when not backing off. */
  readonly retryAtMs: number | null;
  readonly consecutiveFailures: number;
  /** The certificate is within `warnBefore` of its end and still not renewed. */
  readonly expiringSoon: boolean;
  /** The certificate has expired (a new join token is needed). */
  readonly expired: boolean;
  /** Renewal is impossible (revoked or expired, or no certificate yet) and no join token worked. */
  readonly needsJoinToken: boolean;
  /** A Watch stream is open and registered. */
  readonly watching: boolean;
  /** Public message of the last failure, or null. Never contains secrets. */
  readonly lastError: string | null;
  readonly counters: Readonly<AgentCounters>;
}

/** Which step failed. */
export type AgentStage = 'enroll' | 'renew' | 'watch' | 'trust-bundle' | 'persist' | 'reload';

/** The events of {@link AgentCore} (EventEmitter names and arguments). */
export interface AgentEvents {
  /** A first certificate (or a new one after a revocation) from a join token. */
  enrolled: [identity: ServiceIdentity];
  /** A renewal: a new key and certificate; `forced` when the broker asked (RENEW_NOW). */
  renewed: [identity: ServiceIdentity, info: { readonly forced: boolean; readonly previousSerial: string }];
  /** Any change of the current identity (enrolled, renewed, new trust bundle). */
  identity: [identity: ServiceIdentity, change: IdentityChange];
  /** The Watch stream is registered with the broker. */
  watching: [];
  /** The Watch stream ended (error null: the broker closed it). A reconnect is scheduled. */
  'watch-ended': [error: BrokerError | null];
  /** The broker pushed RENEW_NOW for the current certificate. */
  'renew-now': [event: WatchEvent];
  /** The trust bundle was refetched after TRUST_BUNDLE_CHANGED. */
  'trust-bundle': [identity: ServiceIdentity];
  /** A failed step will be retried after `delayMs`. */
  retry: [info: { readonly stage: AgentStage; readonly delayMs: number; readonly failures: number; readonly error: BrokerError }];
  /** The certificate is within `warnBefore` of its end and not renewed yet. */
  expiring: [info: { readonly serial: string; readonly notAfter: Date; readonly msLeft: number }];
  /** The certificate expired without renewal. */
  expired: [info: { readonly serial: string; readonly notAfter: Date }];
  /** Renewal is impossible: a new join token is needed (the message says where to put it). */
  'needs-join-token': [message: string];
  /**
   * A step failed (it is retried as the `retry` event says). Not named 'error' on purpose: an
   * unobserved 'error' event would crash the process, and `events.once(core, 'renewed')` would
   * reject on the first transient failure.
   */
  failure: [error: BrokerError, stage: AgentStage];
  stopped: [];
}

/** Options of {@link AgentCore}. */
export interface AgentCoreOptions {
  readonly transport: BrokerTransport;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  /** Draws the renewal jitter. */
  readonly random: RandomSource;
  readonly logger?: Logger;
  /** Type of each new key; default P-256. */
  readonly keyType?: ServiceKeyType;
  /** DNS names and IP addresses to ask for in each CSR (policy must allow them). */
  readonly names?: CsrNames;
  /** Requested certificate lifetime in seconds; 0 or absent: the identity's default. */
  readonly ttlSeconds?: number;
  readonly timing?: Partial<RenewalTiming>;
  /** Keep a Rotation/Watch stream open; default true. */
  readonly watch?: boolean;
  /** Where a join token comes from when one is needed; absent: never (renewal only). */
  readonly joinToken?: JoinTokenSource;
  /** An identity from an earlier run (e.g. files); used while valid instead of enrolling. */
  readonly initialIdentity?: ServiceIdentity | null;
  /**
   * Called with each new identity before it becomes current and before its event is emitted
   * (the agent writes its files and runs the reload hook here). If it throws, the identity is
   * still used in memory, the failure is reported (stage `persist`) and a renewal is retried
   * with backoff, so the files catch up.
   */
  readonly onIdentity?: (identity: ServiceIdentity, change: IdentityChange) => Promise<void> | void;
}

/** What {@link AgentCore.runOnce} did. */
export type OnceOutcome = { readonly action: 'none' | 'enrolled' | 'renewed'; readonly identity: ServiceIdentity };

/**
 * Failures that stop the agent at start instead of being retried: without a usable certificate,
 * a failure retrying cannot fix (no join token, an unreadable token file, a refused token or
 * CSR) needs a person, and saying so at once beats retrying quietly.
 */
function isFatalAtStart(error: BrokerError): boolean {
  return !error.retryable;
}

/** The enroll / renew / watch loop, in memory. */
export class AgentCore extends EventEmitter<AgentEvents> {
  readonly #transport: BrokerTransport;
  readonly #clock: Clock;
  readonly #scheduler: Scheduler;
  readonly #random: RandomSource;
  readonly #logger: Logger;
  readonly #keyType: ServiceKeyType;
  readonly #names: CsrNames;
  readonly #ttlSeconds: number;
  readonly #timing: RenewalTiming;
  readonly #watchEnabled: boolean;
  readonly #joinToken: JoinTokenSource | undefined;
  readonly #onIdentity: AgentCoreOptions['onIdentity'];

  #identity: ServiceIdentity | null;
  #renewAt: number | null = null;
  #retryAt: number | null = null;
  #failures = 0;
  #forced = false;
  #needsJoinToken = false;
  #warned = false;
  #expiredReported = false;
  #inFlight: Promise<void> | null = null;
  #timer: ScheduledTask | null = null;
  #state: AgentState = 'idle';
  #lastError: string | null = null;
  #lastFailure: BrokerError | null = null;
  #running = false;
  #stopped = false;
  readonly #counters: AgentCounters = {
    enrollments: 0,
    enrollmentFailures: 0,
    renewals: 0,
    forcedRenewals: 0,
    renewalFailures: 0,
    watchConnects: 0,
    watchDrops: 0,
    trustBundleUpdates: 0,
    persistFailures: 0,
  };

  #watchStream: WatchStream | null = null;
  #watchGeneration = 0;
  #watchTimer: ScheduledTask | null = null;
  #watchFailures = 0;
  #watching = false;
  #trustTimer: ScheduledTask | null = null;
  #trustFailures = 0;

  constructor(options: AgentCoreOptions) {
    super();
    this.#transport = options.transport;
    this.#clock = options.clock;
    this.#scheduler = options.scheduler;
    this.#random = options.random;
    this.#logger = options.logger ?? silentLogger;
    this.#keyType = options.keyType ?? 'P-256';
    this.#names = options.names ?? {};
    this.#ttlSeconds = options.ttlSeconds ?? 0;
    this.#timing = { ...DEFAULT_RENEWAL_TIMING, ...options.timing };
    this.#watchEnabled = options.watch ?? true;
    this.#joinToken = options.joinToken;
    this.#onIdentity = options.onIdentity;
    this.#identity = options.initialIdentity ?? null;
    if (this.#identity !== null) this.#planRenewal(this.#identity);
  }

  /** The current identity (null before the first enrollment). */
  get identity(): ServiceIdentity | null {
    return this.#identity;
  }

  /** A snapshot of state, gauges and counters. */
  status(): AgentStatus {
    const identity = this.#identity;
    const now = this.#clock.now().getTime();
    return Object.freeze({
      state: this.#state,
      spiffeId: identity?.spiffeId ?? null,
      serial: identity?.serial ?? null,
      notAfterMs: identity?.notAfter.getTime() ?? null,
      renewAtMs: this.#renewAt,
      retryAtMs: this.#retryAt,
      consecutiveFailures: this.#failures,
      expiringSoon: this.#warned,
      expired: identity !== null && now >= identity.notAfter.getTime(),
      needsJoinToken: this.#needsJoinToken,
      watching: this.#watching,
      lastError: this.#lastError,
      counters: Object.freeze({ ...this.#counters }),
    });
  }

  /**
   * Starts the loop: keeps a valid initial identity, else enrolls; then renews on schedule and
   * watches. Resolves after the first attempt (if one was due) has finished; a failure that can
   * pass (broker unreachable) is retried with backoff and does not reject.
   * @throws BrokerError when no certificate is usable and the join token is missing or unusable
   *   (`agent.join_token_needed`, `secret.*`), or the broker refuses the request (a used join
   *   token, a CSR policy does not allow): what retrying cannot fix. `agent.stopped` after stop().
   */
  async start(): Promise<void> {
    if (this.#running) return;
    if (this.#stopped) throw new BrokerError('conflict', { code: 'agent.stopped', publicMessage: 'this agent was stopped; create a new one' });
    this.#running = true;
    const identity = this.#identity;
    if (identity !== null) {
      this.#logger.info({ serial: identity.serial, spiffeId: identity.spiffeId, notAfter: identity.notAfter.toISOString() }, 'using the existing certificate');
      this.#state = 'ready';
      this.#startWatch();
    }
    await this.#tick();
    const usable = this.#identity?.isValidAt(this.#clock.now()) ?? false;
    const failure = this.#failures > 0 && !usable ? this.#lastFailure : null;
    if (failure !== null && isFatalAtStart(failure)) {
      await this.stop();
      throw failure;
    }
  }

  /**
   * One pass without timers (`credbroker agent --once`): enrolls when there is no valid
   * certificate, renews when the current one is due (past its renewal time), else does nothing.
   * @throws BrokerError saying what failed (the caller exits non-zero)
   */
  async runOnce(): Promise<OnceOutcome> {
    const identity = this.#identity;
    const now = this.#clock.now().getTime();
    if (identity !== null && identity.isValidAt(new Date(now)) && this.#renewAt !== null && now < this.#renewAt) {
      return { action: 'none', identity };
    }
    const before = this.#counters.enrollments;
    await this.#attempt({ once: true });
    const current = this.#identity;
    if (current === null) throw new BrokerError('internal', { code: 'agent.no_identity', publicMessage: 'no certificate after a successful attempt' });
    return { action: this.#counters.enrollments > before ? 'enrolled' : 'renewed', identity: current };
  }

  /**
   * Renews now (with a new key), whatever the schedule says; what RENEW_NOW does. Resolves when
   * the attempt has finished (a failure is retried with backoff, not thrown).
   */
  async renewNow(): Promise<void> {
    this.#forced = true;
    this.#retryAt = null;
    await this.#tick();
  }

  /** Stops timers and the Watch stream, waits for a running attempt, closes the transport. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#running = false;
    this.#timer?.cancel();
    this.#timer = null;
    this.#trustTimer?.cancel();
    this.#trustTimer = null;
    this.#stopWatch();
    await this.#inFlight?.catch(() => undefined);
    this.#transport.close();
    this.#state = 'stopped';
    this.emit('stopped');
  }

  /** The timer's work: report expiry, warn, attempt when due, schedule the next check. */
  async #tick(): Promise<void> {
    if (this.#stopped) return;
    const now = this.#clock.now().getTime();
    this.#checkExpiry(now);
    if (this.#isDue(now) && (this.#retryAt === null || now >= this.#retryAt)) {
      await this.#attempt({ once: false });
    }
    this.#scheduleNext();
  }

  #isDue(now: number): boolean {
    return this.#identity === null || this.#needsJoinToken || this.#forced || this.#renewAt === null || now >= this.#renewAt;
  }

  #checkExpiry(now: number): void {
    const identity = this.#identity;
    if (identity === null) return;
    if (now >= identity.notAfter.getTime()) {
      if (!this.#expiredReported) {
        this.#expiredReported = true;
        this.#stopWatch();
        this.#logger.error({ serial: identity.serial, notAfter: identity.notAfter.toISOString() }, 'the certificate has EXPIRED without renewal; services using it fail their handshakes');
        this.emit('expired', { serial: identity.serial, notAfter: identity.notAfter });
        this.#requireJoinToken(`the certificate ${identity.serial} expired at ${identity.notAfter.toISOString()}`);
      }
      return;
    }
    if (!this.#warned && this.#renewAt !== null && now >= warnAtMs(validityOf(identity), this.#renewAt, this.#timing)) {
      this.#warned = true;
      const msLeft = identity.notAfter.getTime() - now;
      this.#logger.warn(
        { serial: identity.serial, notAfter: identity.notAfter.toISOString(), secondsLeft: Math.floor(msLeft / 1000), lastError: this.#lastError },
        'the certificate expires soon and is NOT renewed yet; renewal keeps retrying',
      );
      this.emit('expiring', { serial: identity.serial, notAfter: identity.notAfter, msLeft });
    }
  }

  #scheduleNext(): void {
    this.#timer?.cancel();
    this.#timer = null;
    if (this.#stopped || !this.#running) return;
    const now = this.#clock.now().getTime();
    const identity = this.#identity;
    const candidates: number[] = [];
    // The next attempt: a retry after a failure, now (a push arrived while an attempt ran), or
    // the planned renewal. Never a past renewal time: #tick has just acted on it.
    if (this.#retryAt !== null) candidates.push(this.#retryAt);
    else if (this.#isDue(now)) candidates.push(now);
    else if (this.#renewAt !== null) candidates.push(this.#renewAt);
    // Each of these fires once per certificate (#warned, #expiredReported).
    if (identity !== null && !this.#expiredReported) {
      if (!this.#warned && this.#renewAt !== null) candidates.push(warnAtMs(validityOf(identity), this.#renewAt, this.#timing));
      candidates.push(identity.notAfter.getTime());
    }
    if (candidates.length === 0) return;
    const next = Math.min(...candidates);
    this.#timer = this.#scheduler.setTimeout(() => this.#tick(), Math.max(0, next - now));
  }

  /** One enrollment or renewal, single-flight. */
  #attempt(options: { once: boolean }): Promise<void> {
    this.#inFlight ??= this.#runAttempt(options).finally(() => {
      this.#inFlight = null;
    });
    return this.#inFlight;
  }

  async #runAttempt(options: { once: boolean }): Promise<void> {
    const forced = this.#forced;
    let stage: AgentStage = 'renew';
    try {
      const identity = this.#identity;
      if (identity !== null && !this.#needsJoinToken && identity.isValidAt(this.#clock.now())) {
        try {
          this.#state = 'renewing';
          await this.#renew(identity, forced);
          this.#succeeded();
          return;
        } catch (error) {
          const failure = toError(error);
          if (failure.kind !== 'unauthenticated') throw failure;
          // Revoked (or expired by the broker's clock): only a new join token helps.
          this.#counters.renewalFailures++;
          this.#requireJoinToken(`the broker refused to renew certificate ${identity.serial}: ${failure.publicMessage}`);
        }
      }
      stage = 'enroll';
      this.#state = 'enrolling';
      await this.#enroll();
      this.#succeeded();
    } catch (error) {
      const failure = toError(error);
      if (stage === 'renew' && failure.code !== 'agent.persist') this.#counters.renewalFailures++;
      if (stage === 'enroll' && failure.code !== 'agent.persist') this.#counters.enrollmentFailures++;
      this.#failed(failure.code === 'agent.persist' ? 'persist' : stage, failure, options.once);
      if (options.once) throw failure;
    }
  }

  async #renew(identity: ServiceIdentity, forced: boolean): Promise<void> {
    const { keyPem, csrDer } = await newKeyAndCsr(this.#keyType, this.#names);
    const issued = await this.#transport.renew(identity, csrDer, this.#ttlSeconds);
    const next = ServiceIdentity.fromIssued(keyPem, issued);
    this.#counters.renewals++;
    if (forced) this.#counters.forcedRenewals++;
    await this.#adopt(next, 'renewed', () => {
      this.emit('renewed', next, { forced, previousSerial: identity.serial });
    });
  }

  async #enroll(): Promise<void> {
    const source = this.#joinToken;
    const token = source === undefined ? null : await source.take();
    if (source === undefined || token === null) {
      const where = source === undefined ? 'the configuration names no join token source' : `no join token at ${source.description}`;
      throw new BrokerError('unauthenticated', {
        code: 'agent.join_token_needed',
        publicMessage: `${this.#identity === null ? 'there is no certificate yet' : 'the certificate cannot be renewed'} and ${where}: a new join token is needed (ask an operator for one${source === undefined ? '' : ` and put it at ${source.description}, mode 0600`})`,
        retryable: false,
      });
    }
    let issuedKeyPem: string;
    let issued: IssuedCertificate;
    try {
      const { keyPem, csrDer } = await newKeyAndCsr(this.#keyType, this.#names);
      issuedKeyPem = keyPem;
      issued = await this.#transport.enroll(token, csrDer, this.#ttlSeconds);
    } catch (error) {
      const failure = toError(error);
      if (failure.kind === 'unauthenticated') {
        this.#requireJoinToken(`the join token from ${source.description} was refused: ${failure.publicMessage}; replace it with a new one`);
      }
      throw failure;
    } finally {
      token.dispose();
    }
    const next = ServiceIdentity.fromIssued(issuedKeyPem, issued);
    this.#counters.enrollments++;
    this.#needsJoinToken = false;
    try {
      source.spent();
    } catch (error) {
      this.#logger.warn({ error: toError(error).publicMessage }, 'the used join token could not be removed');
    }
    await this.#adopt(next, 'enrolled', () => {
      this.emit('enrolled', next);
    });
  }

  /** Persists (hook), switches to `next`, plans its renewal, restarts Watch, emits. */
  async #adopt(next: ServiceIdentity, change: IdentityChange, emitChange: () => void): Promise<void> {
    let persistError: BrokerError | null = null;
    try {
      await this.#onIdentity?.(next, change);
    } catch (error) {
      persistError = toError(error);
      this.#counters.persistFailures++;
    }
    this.#identity = next;
    this.#planRenewal(next);
    this.#logger.info(
      { change, serial: next.serial, spiffeId: next.spiffeId, notAfter: next.notAfter.toISOString(), renewAt: new Date(this.#renewAt ?? 0).toISOString() },
      change === 'enrolled' ? 'enrolled: new certificate in use' : 'renewed: new key and certificate in use',
    );
    if (this.#running) this.#startWatch();
    emitChange();
    this.emit('identity', next, change);
    if (persistError !== null) {
      throw new BrokerError(persistError.kind === 'unavailable' ? 'unavailable' : 'internal', {
        code: 'agent.persist',
        publicMessage: `the new certificate ${next.serial} is in use in memory but could not be stored: ${persistError.publicMessage}`,
        cause: persistError,
        retryable: true,
      });
    }
  }

  #planRenewal(identity: ServiceIdentity): void {
    this.#renewAt = renewAtMs(validityOf(identity), this.#timing, uniformFraction(this.#random));
    this.#warned = false;
    this.#expiredReported = false;
  }

  #succeeded(): void {
    this.#failures = 0;
    this.#retryAt = null;
    this.#forced = false;
    this.#lastError = null;
    this.#lastFailure = null;
    this.#state = 'ready';
  }

  #failed(stage: AgentStage, error: BrokerError, once: boolean): void {
    this.#failures++;
    this.#lastError = error.publicMessage;
    this.#lastFailure = error;
    if (stage === 'persist') this.#forced = true; // renew again so the files catch up
    this.#emitError(error, stage);
    if (once) return;
    const delayMs = backoffDelayMs(this.#failures, this.#timing);
    this.#retryAt = this.#clock.now().getTime() + delayMs;
    this.#state = this.#needsJoinToken ? 'needs_join_token' : 'backing_off';
    const identity = this.#identity;
    const fields = { stage, error: error.publicMessage, code: error.code, failures: this.#failures, retryInMs: delayMs, ...(identity === null ? {} : { serial: identity.serial, notAfter: identity.notAfter.toISOString() }) };
    if (this.#failures === 1 || this.#failures % 10 === 0) this.#logger.warn(fields, `${stage} failed; retrying with backoff${identity !== null && identity.isValidAt(this.#clock.now()) ? ' (the current certificate stays in use)' : ''}`);
    else this.#logger.debug(fields, `${stage} failed again`);
    this.emit('retry', { stage, delayMs, failures: this.#failures, error });
  }

  #requireJoinToken(why: string): void {
    const first = !this.#needsJoinToken;
    this.#needsJoinToken = true;
    this.#state = 'needs_join_token';
    const where = this.#joinToken === undefined ? 'configure a join token source' : `put a new join token at ${this.#joinToken.description} (mode 0600)`;
    const message = `${why}. A NEW JOIN TOKEN IS NEEDED: ask an operator for one and ${where}`;
    if (first) this.#logger.error({ serial: this.#identity?.serial ?? null }, message);
    this.#stopWatch();
    this.emit('needs-join-token', message);
  }

  #emitError(error: BrokerError, stage: AgentStage): void {
    this.emit('failure', error, stage);
  }

  // ---- Watch -------------------------------------------------------------------------------

  #startWatch(): void {
    this.#stopWatch();
    const identity = this.#identity;
    if (!this.#watchEnabled || this.#stopped || identity === null || this.#needsJoinToken) return;
    const generation = ++this.#watchGeneration;
    try {
      this.#watchStream = this.#transport.watch(identity, {
        onEvent: (event) => {
          if (generation === this.#watchGeneration) this.#onWatchEvent(event);
        },
        onEnd: (error) => {
          if (generation === this.#watchGeneration) this.#onWatchEnd(error);
        },
      });
    } catch (error) {
      this.#onWatchEnd(toError(error));
    }
  }

  #stopWatch(): void {
    this.#watchGeneration++;
    this.#watchTimer?.cancel();
    this.#watchTimer = null;
    this.#watchStream?.cancel();
    this.#watchStream = null;
    this.#watching = false;
  }

  #onWatchEvent(event: WatchEvent): void {
    const identity = this.#identity;
    switch (event.kind) {
      case 'WATCHING':
        this.#watchFailures = 0;
        this.#watching = true;
        this.#counters.watchConnects++;
        this.#logger.debug({ serial: identity?.serial ?? null }, 'watching for rotation events');
        this.emit('watching');
        return;
      case 'RENEW_NOW': {
        if (identity === null) return;
        if (event.serial !== '' && event.serial.toLowerCase().replace(/:/g, '') !== identity.serial) {
          this.#logger.debug({ serial: identity.serial, asked: event.serial }, 'RENEW_NOW for another serial: ignored');
          return;
        }
        this.#logger.info({ serial: identity.serial, rotationId: event.rotationId, reason: event.reason }, 'the broker asks to renew now');
        this.emit('renew-now', event);
        void this.renewNow();
        return;
      }
      case 'TRUST_BUNDLE_CHANGED':
        this.#logger.info({}, 'the trust bundle changed; fetching it');
        void this.#refreshTrustBundle();
        return;
      default:
        this.#logger.debug({ kind: event.kind }, 'unknown watch event ignored');
    }
  }

  #onWatchEnd(error: BrokerError | null): void {
    this.#watchStream = null;
    this.#watching = false;
    this.#counters.watchDrops++;
    this.emit('watch-ended', error);
    if (this.#stopped) return;
    if (error?.kind === 'unauthenticated') {
      // The broker no longer accepts this certificate: a renewal attempt finds out whether a new
      // join token is needed (and reconnects Watch with the new certificate if not).
      this.#logger.warn({ error: error.publicMessage }, 'Watch refused the certificate; renewing');
      void this.renewNow();
      return;
    }
    this.#watchFailures++;
    const delayMs = backoffDelayMs(this.#watchFailures, this.#timing);
    const failure = error ?? new BrokerError('unavailable', { code: 'agent.watch_closed', publicMessage: 'the broker closed the Watch stream' });
    this.#logger.info({ error: failure.publicMessage, retryInMs: delayMs }, 'Watch stream ended; reconnecting');
    this.emit('retry', { stage: 'watch', delayMs, failures: this.#watchFailures, error: failure });
    this.#watchTimer = this.#scheduler.setTimeout(() => {
      this.#watchTimer = null;
      this.#startWatch();
    }, delayMs);
  }

  async #refreshTrustBundle(): Promise<void> {
    this.#trustTimer?.cancel();
    this.#trustTimer = null;
    const identity = this.#identity;
    if (identity === null || this.#stopped) return;
    try {
      const bundle = await this.#transport.trustBundle(identity);
      const current = this.#identity;
      // Stopped while the call ran: nothing to update.
      if (current === null || !this.#running) return;
      const next = current.withTrustBundle(bundle.rootsPem);
      this.#trustFailures = 0;
      this.#counters.trustBundleUpdates++;
      try {
        await this.#onIdentity?.(next, 'trust-bundle');
      } catch (error) {
        this.#counters.persistFailures++;
        this.#emitError(toError(error), 'persist');
        this.#logger.error({ error: toError(error).publicMessage }, 'the new trust bundle could not be stored; it is used in memory');
      }
      this.#identity = next;
      this.#startWatch();
      this.emit('trust-bundle', next);
      this.emit('identity', next, 'trust-bundle');
    } catch (error) {
      const failure = toError(error);
      this.#trustFailures++;
      const delayMs = backoffDelayMs(this.#trustFailures, this.#timing);
      this.#logger.warn({ error: failure.publicMessage, retryInMs: delayMs }, 'fetching the trust bundle failed; retrying');
      this.#emitError(failure, 'trust-bundle');
      this.emit('retry', { stage: 'trust-bundle', delayMs, failures: this.#trustFailures, error: failure });
      this.#trustTimer = this.#scheduler.setTimeout(() => this.#refreshTrustBundle(), delayMs);
    }
  }
}

function validityOf(identity: ServiceIdentity): { notBeforeMs: number; notAfterMs: number } {
  return { notBeforeMs: identity.notBefore.getTime(), notAfterMs: identity.notAfter.getTime() };
}

function toError(error: unknown): BrokerError {
  if (isBrokerError(error)) return error;
  return new BrokerError('internal', { code: 'agent.internal', publicMessage: error instanceof Error ? error.message : String(error), cause: error });
}
