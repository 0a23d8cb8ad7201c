/**
 * Runs cheap synchronous PKCS#11 operations (a P-256 C_Sign takes ~40 µs) in batches on one
 * borrowed session, at most {@link BATCH_BUDGET_MS} per turn of the event loop, then yields with
 * setImmediate. A burst of 500 signatures thus never holds the loop for more than a few
 * milliseconds, and a lone signature costs no thread hand-off.
 */
import { performance } from 'node:perf_hooks';
import type { SessionPool, SessionHandle } from './session-pool.js';

/** Longest stretch of synchronous signing per event-loop turn, in ms. */
export const BATCH_BUDGET_MS = 2;

interface Job {
  readonly operation: (session: SessionHandle) => Buffer;
  resolve(value: Buffer): void;
  reject(error: unknown): void;
}

/** A FIFO of synchronous operations drained in time-boxed batches. */
export class SyncSignQueue {
  readonly #pool: SessionPool;
  readonly #jobs: Job[] = [];
  #head = 0;
  #scheduled = false;

  constructor(pool: SessionPool) {
    this.#pool = pool;
  }

  /** Queues `operation`; it runs synchronously on a pooled session in a later turn. */
  run(operation: (session: SessionHandle) => Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.#jobs.push({ operation, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    try {
      await this.#pool.use((session) => {
        const deadline = performance.now() + BATCH_BUDGET_MS;
        do {
          const job = this.#jobs[this.#head++];
          if (job === undefined) break;
          try {
            job.resolve(job.operation(session));
          } catch (error) {
            job.reject(error);
          }
        } while (performance.now() < deadline);
      });
    } catch (error) {
      // The pool is closed (token lost or closed): fail everything queued.
      for (let job = this.#jobs[this.#head++]; job !== undefined; job = this.#jobs[this.#head++]) job.reject(error);
    }
    if (this.#head >= this.#jobs.length) {
      this.#jobs.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024) {
      this.#jobs.splice(0, this.#head);
      this.#head = 0;
    }
    this.#scheduled = false;
    if (this.#jobs.length > this.#head) this.#schedule();
  }
}
