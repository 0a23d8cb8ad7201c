/**
 * Health that means something (grpc.health.v1): SERVING only while the broker can really issue.
 *
 * - A known-answer self-test of every online key (sign a fresh challenge on the HSM, verify it in
 *   software) at start and every `intervalMs`; a failure, or the token reporting a lost session,
 *   turns health NOT_SERVING; the token's reconnection (or the next passing self-test) turns it
 *   SERVING again, without a restart.
 * - The intermediate close to its notAfter (less than `expiryMarginMs` left: leaves would be cut
 *   short, and renewals soon impossible) is NOT_SERVING too, with the reason in the log: an
 *   operator must roll the intermediate before it expires silently.
 *
 * The checks are explicit calls ({@link check}); the interval timer only calls them, so tests
 * drive the monitor without waiting.
 */
import { EventEmitter } from 'node:events';
import { verifySignature, type Clock, type Logger, type RandomSource, type Signer } from '../core/index.js';

/** What the monitor watches on the HSM token. */
export interface MonitoredToken extends EventEmitter {
  readonly label: string;
  readonly state: string;
}

/** The health of the broker, with the reasons when it is not serving. */
export interface HealthReport {
  readonly serving: boolean;
  /** Why not serving, e.g. `hsm: token "online" lost`, `ca: intermediate expires in 3 h`. Empty when serving. */
  readonly reasons: readonly string[];
  readonly checkedAt: Date;
}

/** Options of {@link HealthMonitor}. */
export interface HealthMonitorOptions {
  readonly token: MonitoredToken;
  /** The online keys to self-test, by label. */
  readonly signers: readonly { readonly label: string; readonly signer: Signer }[];
  /** The issuing intermediate's notAfter (read at every check: a roll-over changes it). */
  readonly intermediateNotAfter: () => Date;
  readonly clock: Clock;
  readonly random: RandomSource;
  /** Applies a status to the health service. */
  readonly setServing: (serving: boolean) => void;
  readonly logger: Logger;
  /** Self-test period (default 30 s). */
  readonly intervalMs?: number;
  /** NOT_SERVING when the intermediate has less than this left (default 24 h, the longest leaf). */
  readonly expiryMarginMs?: number;
}

/** Default self-test period. */
export const HEALTH_INTERVAL_MS = 30_000;
/** Default intermediate expiry margin: the longest certificate a leaf may get. */
export const HEALTH_EXPIRY_MARGIN_MS = 24 * 3_600_000;

/** Watches the HSM and the CA and keeps the health service truthful. */
export class HealthMonitor {
  readonly #options: HealthMonitorOptions;
  readonly #intervalMs: number;
  readonly #expiryMarginMs: number;
  #tokenProblem: string | null = null;
  #report: HealthReport;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<HealthReport> | null = null;
  readonly #onLost = (error: unknown): void => {
    this.#tokenProblem = `hsm: token "${this.#options.token.label}" lost (${error instanceof Error ? error.message : String(error)}); reconnecting`;
    this.#apply(this.#reasonsWithoutSelfTest());
  };
  readonly #onFailed = (error: unknown): void => {
    this.#tokenProblem = `hsm: token "${this.#options.token.label}" failed and stopped reconnecting (${error instanceof Error ? error.message : String(error)}); the broker needs attention`;
    this.#apply(this.#reasonsWithoutSelfTest());
  };
  readonly #onReconnected = (): void => {
    this.#tokenProblem = null;
    // Serving again only once the keys really sign.
    void this.check();
  };

  constructor(options: HealthMonitorOptions) {
    this.#options = options;
    this.#intervalMs = options.intervalMs ?? HEALTH_INTERVAL_MS;
    this.#expiryMarginMs = options.expiryMarginMs ?? HEALTH_EXPIRY_MARGIN_MS;
    this.#report = { serving: false, reasons: ['starting'], checkedAt: options.clock.now() };
  }

  /** The last report. */
  get report(): HealthReport {
    return this.#report;
  }

  /** Listens to the token, runs a first check, and checks every interval. */
  async start(): Promise<HealthReport> {
    const token = this.#options.token;
    token.on('lost', this.#onLost);
    token.on('failed', this.#onFailed);
    token.on('reconnected', this.#onReconnected);
    const first = await this.check();
    this.#timer = setInterval(() => {
      void this.check();
    }, this.#intervalMs);
    this.#timer.unref();
    return first;
  }

  stop(): void {
    const token = this.#options.token;
    token.off('lost', this.#onLost);
    token.off('failed', this.#onFailed);
    token.off('reconnected', this.#onReconnected);
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Runs every check now (one at a time) and applies the result. */
  check(): Promise<HealthReport> {
    this.#running ??= this.#check().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #check(): Promise<HealthReport> {
    const reasons = this.#reasonsWithoutSelfTest();
    if (this.#options.token.state === 'open') {
      for (const { label, signer } of this.#options.signers) {
        const problem = await this.#selfTest(signer);
        if (problem !== null) reasons.push(`hsm: self-test of key "${label}" failed: ${problem}`);
      }
    }
    return this.#apply(reasons);
  }

  /** Reasons known without signing: the token's state and the intermediate's expiry. */
  #reasonsWithoutSelfTest(): string[] {
    const reasons: string[] = [];
    const state = this.#options.token.state;
    if (state !== 'open') reasons.push(this.#tokenProblem ?? `hsm: token "${this.#options.token.label}" is ${state}`);
    const left = this.#options.intermediateNotAfter().getTime() - this.#options.clock.now().getTime();
    if (left < this.#expiryMarginMs) {
      reasons.push(
        left <= 0
          ? 'ca: the intermediate has expired; roll it over (pki/ceremonies/README.md)'
          : `ca: the intermediate expires in ${formatHours(left)} (less than the ${formatHours(this.#expiryMarginMs)} margin): roll it over now`,
      );
    }
    return reasons;
  }

  /** Known-answer test: a fresh challenge signed on the HSM verifies with the public key. */
  async #selfTest(signer: Signer): Promise<string | null> {
    const challenge = this.#options.random.bytes(32);
    try {
      const signature = await signer.sign(challenge);
      return verifySignature(signer.algorithm, signer.publicKey, challenge, signature) ? null : 'the signature does not verify';
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }

  #apply(reasons: readonly string[]): HealthReport {
    const serving = reasons.length === 0;
    const previous = this.#report;
    this.#report = { serving, reasons, checkedAt: this.#options.clock.now() };
    if (previous.serving !== serving || previous.reasons.join('\n') !== reasons.join('\n')) {
      this.#options.setServing(serving);
      if (serving) this.#options.logger.info({}, 'health: SERVING');
      else this.#options.logger.warn({ reasons }, 'health: NOT_SERVING');
    }
    return this.#report;
  }
}

function formatHours(ms: number): string {
  const hours = ms / 3_600_000;
  return hours >= 1 ? `${hours.toFixed(hours >= 10 ? 0 : 1)} h` : `${Math.max(0, Math.round(ms / 60_000))} min`;
}
