/**
 * Revocations made by other brokers, learned by polling the shared store. Each broker keeps the
 * revoked serials in memory for its peer check (a TLS handshake must not wait for the database);
 * with several brokers on one PostgreSQL, a revocation made on one is learned by every other
 * within one {@link RevocationPoller.intervalMs} (plus the poll's own transaction, a few ms
 * unless the store is stuck). The broker that revokes learns at once, from its own decision.
 *
 * A thin loop (STYLE.md): {@link RevocationPoller.tick} reads and reports for one instant; tests
 * call it directly; {@link RevocationPoller.start} only calls it on an unref'd interval.
 */
import { silentLogger, toBrokerError, type Clock, type Logger } from '../core/index.js';
import type { Store } from '../store/index.js';

/** Options of a {@link RevocationPoller}. */
export interface RevocationPollerOptions {
  readonly store: Store;
  readonly clock: Clock;
  /** True for a serial the broker already treats as revoked. */
  readonly isKnown: (serial: string) => boolean;
  /** Called once for each revoked serial the broker did not know (refuse it, end its streams, drop the CRL). */
  readonly onRevoked: (serial: string) => void;
  /** Period of {@link RevocationPoller.start}'s loop, in ms (≥ 1). */
  readonly intervalMs: number;
  readonly logger?: Logger;
}

/** Polls the store for revocations this broker has not seen. */
export class RevocationPoller {
  readonly intervalMs: number;
  readonly #options: RevocationPollerOptions;
  readonly #logger: Logger;
  #interval: NodeJS.Timeout | null = null;
  #running: Promise<readonly string[]> | null = null;

  /** @throws RangeError for a non-positive interval */
  constructor(options: RevocationPollerOptions) {
    if (!Number.isSafeInteger(options.intervalMs) || options.intervalMs < 1) throw new RangeError(`intervalMs must be a positive integer, got ${String(options.intervalMs)}`);
    this.intervalMs = options.intervalMs;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
  }

  /**
   * Reads every revoked, unexpired certificate at `now` and reports the serials not yet known.
   * A tick already running is joined, not repeated.
   * @returns the newly learned serials
   * @throws BrokerError from the store
   */
  tick(now: Date = this.#options.clock.now()): Promise<readonly string[]> {
    this.#running ??= this.#poll(now).finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /** Starts polling every {@link intervalMs} on an unref'd interval; failures are logged. Idempotent. */
  start(): void {
    if (this.#interval !== null) return;
    this.#interval = setInterval(() => {
      this.tick().catch((error: unknown) => {
        this.#logger.warn({ error: toBrokerError(error).toLogObject() }, 'revocation poll failed; revocations of other brokers are learned at the next one');
      });
    }, this.intervalMs).unref();
  }

  /** Stops the loop (a poll already running completes). */
  stop(): void {
    if (this.#interval === null) return;
    clearInterval(this.#interval);
    this.#interval = null;
  }

  async #poll(now: Date): Promise<readonly string[]> {
    const revoked = await this.#options.store.transaction((tx) => tx.listRevokedUnexpired(now));
    const learned = revoked.map((c) => c.serial).filter((serial) => !this.#options.isKnown(serial));
    for (const serial of learned) this.#options.onRevoked(serial);
    if (learned.length > 0) this.#logger.info({ serials: learned }, 'revocations made by another broker learned from the store');
    return learned;
  }
}
