/**
 * A value that is expensive to read (figures that page through the store), read at most once
 * per `maxAgeMs` of the broker's clock and shared by concurrent callers: a storm of scrapes
 * costs one read.
 */
import type { Clock } from '../core/index.js';

/** A loader with a freshness window and a single read in flight. */
export class ScrapeCache<T> {
  readonly #load: () => Promise<T>;
  readonly #clock: Clock;
  readonly #maxAgeMs: number;
  #value: { readonly loadedAtMs: number; readonly value: T } | null = null;
  #loading: Promise<T> | null = null;

  /**
   * @param load reads the value; a rejection reaches the callers waiting on it and is not kept
   * @param maxAgeMs how long a value is reused, from the start of its read, in ms
   */
  constructor(load: () => Promise<T>, clock: Clock, maxAgeMs: number) {
    if (!Number.isFinite(maxAgeMs) || maxAgeMs < 0) throw new RangeError(`maxAgeMs must be a finite number >= 0, got ${maxAgeMs}`);
    this.#load = load;
    this.#clock = clock;
    this.#maxAgeMs = maxAgeMs;
  }

  /**
   * The cached value while it is younger than `maxAgeMs` (a clock that moved backwards makes it
   * stale); otherwise the read in flight, or a new one.
   */
  get(): Promise<T> {
    const nowMs = this.#clock.now().getTime();
    const cached = this.#value;
    if (cached !== null && nowMs >= cached.loadedAtMs && nowMs - cached.loadedAtMs < this.#maxAgeMs) return Promise.resolve(cached.value);
    if (this.#loading !== null) return this.#loading;
    const loading = this.#load().then(
      (value) => {
        this.#value = { loadedAtMs: nowMs, value };
        this.#loading = null;
        return value;
      },
      (error: unknown) => {
        this.#loading = null;
        throw error;
      },
    );
    this.#loading = loading;
    return loading;
  }
}
