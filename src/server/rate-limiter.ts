/**
 * Per-source token buckets: Enroll is the one call that anyone who can reach the port may make,
 * so attempts per source address are bounded (RESOURCE_EXHAUSTED beyond). Time comes from the
 * Clock, so tests drive refills without sleeping.
 */
import { BrokerError, type Clock } from '../core/index.js';

/** A burst and a sustained rate. */
export interface RateLimit {
  /** Attempts allowed at once. */
  readonly burst: number;
  /** Attempts regained per minute. */
  readonly perMinute: number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

/** Most sources tracked; the oldest are forgotten beyond it (memory stays bounded). */
const MAX_SOURCES = 10_000;

/** Token buckets keyed by source. */
export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #clock: Clock;
  readonly #buckets = new Map<string, Bucket>();

  constructor(limit: RateLimit, clock: Clock) {
    this.#limit = limit;
    this.#clock = clock;
  }

  /**
   * Takes one attempt for `source`.
   * @throws BrokerError exhausted `rate.enroll` saying when to retry
   */
  take(source: string): void {
    const nowMs = this.#clock.now().getTime();
    let bucket = this.#buckets.get(source);
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_SOURCES) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      bucket = { tokens: this.#limit.burst, updatedMs: nowMs };
      this.#buckets.set(source, bucket);
    }
    const refill = ((nowMs - bucket.updatedMs) / 60_000) * this.#limit.perMinute;
    bucket.tokens = Math.min(this.#limit.burst, bucket.tokens + Math.max(0, refill));
    bucket.updatedMs = nowMs;
    if (bucket.tokens < 1) {
      const waitSeconds = Math.ceil(((1 - bucket.tokens) * 60) / this.#limit.perMinute);
      throw new BrokerError('exhausted', {
        code: 'rate.enroll',
        publicMessage: `too many enrollment attempts from this address; retry in ${waitSeconds} s`,
      });
    }
    bucket.tokens -= 1;
  }
}

/** The address part of a grpc-js peer string (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`). */
export function sourceAddress(peer: string): string {
  const match = /^(?:ipv4:|ipv6:)?\[?([^\]]*?)\]?:\d+$/.exec(peer);
  return match?.[1] ?? peer;
}
