/**
 * A fixed pool of PKCS#11 sessions. A session runs one cryptographic operation at a time, so
 * every operation borrows one and gives it back; callers beyond the pool size wait in FIFO
 * order, and a bounded wait queue turns overload into `exhausted` instead of unbounded memory.
 */
import { BrokerError } from '../core/index.js';

/** A PKCS#11 session handle as pkcs11js returns it. */
export type SessionHandle = Buffer;

interface Waiter {
  resolve(session: SessionHandle): void;
  reject(error: Error): void;
}

/** Sessions lent one operation at a time. */
export class SessionPool {
  readonly #idle: SessionHandle[];
  readonly #waiters: Waiter[] = [];
  readonly #maxWaiters: number;
  readonly #size: number;
  #closedError: BrokerError | null = null;

  /**
   * @param sessions the open sessions the pool lends (it does not open or close them)
   * @param maxWaiters callers allowed to wait for a session before `exhausted` (default 10,000)
   */
  constructor(sessions: readonly SessionHandle[], maxWaiters = 10_000) {
    if (sessions.length === 0) throw new RangeError('a session pool needs at least one session');
    this.#idle = [...sessions];
    this.#size = sessions.length;
    this.#maxWaiters = maxWaiters;
  }

  /** Number of sessions the pool holds. */
  get size(): number {
    return this.#size;
  }

  /** Sessions lent out right now. */
  get inUse(): number {
    return this.#size - this.#idle.length;
  }

  /** Callers waiting for a session. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Runs `operation` with a borrowed session and gives it back afterwards, even on failure.
   * @throws BrokerError exhausted when too many callers wait; the pool's closing error after close
   */
  async use<T>(operation: (session: SessionHandle) => T | Promise<T>): Promise<T> {
    const session = await this.#acquire();
    try {
      return await operation(session);
    } finally {
      this.#release(session);
    }
  }

  /** Borrows a session only if one is idle right now (for synchronous batches). */
  tryAcquire(): SessionHandle | null {
    if (this.#closedError !== null) throw this.#closedError;
    return this.#idle.pop() ?? null;
  }

  /** Gives back a session taken with {@link tryAcquire}. */
  release(session: SessionHandle): void {
    this.#release(session);
  }

  /** Fails every waiter and every later call with `error`. */
  close(error: BrokerError): void {
    this.#closedError = error;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }

  #acquire(): Promise<SessionHandle> {
    if (this.#closedError !== null) return Promise.reject(this.#closedError);
    const session = this.#idle.pop();
    if (session !== undefined) return Promise.resolve(session);
    if (this.#waiters.length >= this.#maxWaiters) {
      return Promise.reject(
        new BrokerError('exhausted', {
          code: 'hsm.pool_exhausted',
          publicMessage: 'the HSM is saturated; retry later',
          logMessage: `HSM session pool: ${this.#size} sessions busy and ${this.#waiters.length} callers waiting`,
          retryable: true,
        }),
      );
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #release(session: SessionHandle): void {
    if (this.#closedError !== null) return;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter.resolve(session);
    else this.#idle.push(session);
  }
}
