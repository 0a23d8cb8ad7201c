/**
 * A consuming service's copy of the broker's JWK Set (`GetJwks`). It refreshes on a schedule
 * and when a token names a kid it does not know, but never more than once per
 * `minRefreshIntervalMs`, so a flood of tokens with forged kids cannot hammer the broker. Keys
 * that leave the set stay usable for `retainRemovedKeysMs`, so a key roll-over never refuses a
 * token that is still valid.
 *
 * No timers: every decision is a function of the injected clock's `now` at verification time.
 */
import type { JSONWebKeySet } from 'jose';
import { BrokerError, systemClock, type Clock } from '../core/index.js';
import { KeyRing, type VerificationKey } from './key-ring.js';

/** Default {@link JwksCacheOptions.refreshIntervalMs}: 5 minutes. */
export const DEFAULT_JWKS_REFRESH_INTERVAL_MS = 5 * 60_000;
/** Default {@link JwksCacheOptions.minRefreshIntervalMs}: 30 seconds. */
export const DEFAULT_JWKS_MIN_REFRESH_INTERVAL_MS = 30_000;
/** Default {@link JwksCacheOptions.retainRemovedKeysMs}: 1 hour, the longest token lifetime. */
export const DEFAULT_JWKS_RETAIN_REMOVED_KEYS_MS = 60 * 60_000;

/** Options of a {@link JwksCache}. */
export interface JwksCacheOptions {
  /**
   * Fetches the current JWK Set, e.g. through the broker's `GetJwks` call. It should give up on
   * its own (a gRPC deadline): a verification that needs a refresh waits for it.
   */
  readonly fetch: () => Promise<JSONWebKeySet>;
  /** Decides when to refresh and when retained keys expire. Default: the system clock. */
  readonly clock?: Clock;
  /** Refresh when the last successful fetch is this old (ms). Default 5 min. */
  readonly refreshIntervalMs?: number;
  /** Never start a fetch sooner than this after the previous attempt (ms). Default 30 s. */
  readonly minRefreshIntervalMs?: number;
  /**
   * Keep keys that left the set usable this long (ms). Default 1 h. Set 0 to drop them at once,
   * e.g. when the broker withdrew a key because it was compromised.
   */
  readonly retainRemovedKeysMs?: number;
}

/** What the cache knows, for health checks and logs. */
export interface JwksCacheStatus {
  /** kids usable now: the current set's, then retained ones. */
  readonly kids: readonly string[];
  /** kids kept from older sets, with the instant each stops being usable. */
  readonly retained: readonly { readonly kid: string; readonly until: Date }[];
  /** When the last successful fetch ended, or null before the first. */
  readonly fetchedAt: Date | null;
  /** When the last fetch started, or null before the first. */
  readonly attemptedAt: Date | null;
  /** Why the last fetch failed, or null if it succeeded (log-safe: message only). */
  readonly lastError: string | null;
  /** Number of fetches started. */
  readonly fetches: number;
}

interface RetainedKey {
  readonly key: VerificationKey;
  /** Instant (ms) from which the key is no longer usable. */
  readonly untilMs: number;
}

/** A JWK Set kept fresh by an injected fetch. */
export class JwksCache {
  readonly #fetch: () => Promise<JSONWebKeySet>;
  readonly #clock: Clock;
  readonly #refreshIntervalMs: number;
  readonly #minRefreshIntervalMs: number;
  readonly #retainRemovedKeysMs: number;
  #current: KeyRing | null = null;
  #retained = new Map<string, RetainedKey>();
  #fetchedAtMs: number | null = null;
  #attemptedAtMs: number | null = null;
  #lastError: string | null = null;
  #fetches = 0;
  #inFlight: Promise<void> | null = null;

  /**
   * @throws BrokerError invalid `tokens.jwks_cache` for an interval that is negative, not finite
   *   or (refreshIntervalMs) zero
   */
  constructor(options: JwksCacheOptions) {
    this.#fetch = options.fetch;
    this.#clock = options.clock ?? systemClock;
    this.#refreshIntervalMs = interval('refreshIntervalMs', options.refreshIntervalMs, DEFAULT_JWKS_REFRESH_INTERVAL_MS, 1);
    this.#minRefreshIntervalMs = interval('minRefreshIntervalMs', options.minRefreshIntervalMs, DEFAULT_JWKS_MIN_REFRESH_INTERVAL_MS, 0);
    this.#retainRemovedKeysMs = interval('retainRemovedKeysMs', options.retainRemovedKeysMs, DEFAULT_JWKS_RETAIN_REMOVED_KEYS_MS, 0);
  }

  /**
   * The key for `kid`, refreshing first when the set is due (refreshIntervalMs) or does not
   * know the kid, in both cases only if minRefreshIntervalMs has passed since the last attempt.
   * A failed refresh keeps the keys the cache has (see {@link status}).
   * @returns the key, or undefined if neither the current set nor a retained key has this kid
   * @throws BrokerError unavailable `tokens.jwks_unavailable` if no set was ever fetched and the
   *   fetch fails now
   */
  async key(kid: string): Promise<VerificationKey | undefined> {
    const nowMs = this.#clock.now().getTime();
    if (this.#current === null || this.#refreshDue(nowMs)) {
      await this.#refreshIfAllowed(nowMs);
    }
    let found = this.#lookup(kid, nowMs);
    // A fetch under way (started by another verification) may bring the kid: wait for it.
    if (found === undefined && (this.#inFlight !== null || this.#mayAttempt(nowMs))) {
      await this.#refreshIfAllowed(nowMs);
      found = this.#lookup(kid, this.#clock.now().getTime());
    }
    return found;
  }

  /**
   * Fetches the set now (e.g. at start-up, to fail early), unless a fetch is under way, in which
   * case it waits for that one. Not rate-limited: for the caller's own schedule, not per token.
   * @throws BrokerError unavailable `tokens.jwks_unavailable` if the fetch fails or returns
   *   something that is not a JWK Set
   */
  async refresh(): Promise<void> {
    await this.#startRefresh(this.#clock.now().getTime());
    if (this.#lastError !== null) throw unavailable(this.#lastError);
  }

  /** What the cache holds now, for health checks and logs. */
  status(): JwksCacheStatus {
    const nowMs = this.#clock.now().getTime();
    const retained = [...this.#retained.values()]
      .filter((entry) => entry.untilMs > nowMs)
      .map((entry) => ({ kid: entry.key.kid, until: new Date(entry.untilMs) }));
    return {
      kids: [...(this.#current?.kids() ?? []), ...retained.map((entry) => entry.kid)],
      retained,
      fetchedAt: this.#fetchedAtMs === null ? null : new Date(this.#fetchedAtMs),
      attemptedAt: this.#attemptedAtMs === null ? null : new Date(this.#attemptedAtMs),
      lastError: this.#lastError,
      fetches: this.#fetches,
    };
  }

  #lookup(kid: string, nowMs: number): VerificationKey | undefined {
    const current = this.#current?.get(kid);
    if (current !== undefined) return current;
    const retained = this.#retained.get(kid);
    return retained !== undefined && retained.untilMs > nowMs ? retained.key : undefined;
  }

  #refreshDue(nowMs: number): boolean {
    return this.#fetchedAtMs === null || elapsed(this.#fetchedAtMs, nowMs) >= this.#refreshIntervalMs;
  }

  #mayAttempt(nowMs: number): boolean {
    return this.#attemptedAtMs === null || elapsed(this.#attemptedAtMs, nowMs) >= this.#minRefreshIntervalMs;
  }

  async #refreshIfAllowed(nowMs: number): Promise<void> {
    if (this.#inFlight !== null) {
      await this.#inFlight;
    } else if (this.#mayAttempt(nowMs)) {
      await this.#startRefresh(nowMs);
    }
    if (this.#current === null) throw unavailable(this.#lastError ?? 'no JWK Set fetched yet');
  }

  #startRefresh(nowMs: number): Promise<void> {
    if (this.#inFlight !== null) return this.#inFlight;
    this.#attemptedAtMs = nowMs;
    this.#fetches++;
    const run = async (): Promise<void> => {
      try {
        const ring = await KeyRing.fromJwks(await this.#fetch());
        this.#install(ring, this.#clock.now().getTime());
        this.#lastError = null;
      } catch (error) {
        this.#lastError = error instanceof Error ? error.message : String(error);
      }
    };
    const inFlight = run().finally(() => {
      this.#inFlight = null;
    });
    this.#inFlight = inFlight;
    return inFlight;
  }

  /** Replaces the current set; keys that left it are retained for retainRemovedKeysMs. */
  #install(ring: KeyRing, nowMs: number): void {
    const retained = new Map<string, RetainedKey>();
    for (const [kid, entry] of this.#retained) {
      if (ring.get(kid) === undefined && entry.untilMs > nowMs) retained.set(kid, entry);
    }
    const previous = this.#current;
    if (previous !== null && this.#retainRemovedKeysMs > 0) {
      for (const jwk of previous.jwks.keys) {
        const kid = jwk.kid ?? '';
        const key = previous.get(kid);
        if (key !== undefined && ring.get(kid) === undefined && !retained.has(kid)) {
          retained.set(kid, { key, untilMs: nowMs + this.#retainRemovedKeysMs });
        }
      }
    }
    this.#current = ring;
    this.#retained = retained;
    this.#fetchedAtMs = nowMs;
  }
}

/** Time from `fromMs` to `nowMs`; a clock that went backward counts as a long time. */
function elapsed(fromMs: number, nowMs: number): number {
  return nowMs >= fromMs ? nowMs - fromMs : Number.POSITIVE_INFINITY;
}

function interval(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min) {
    throw new BrokerError('invalid', {
      code: 'tokens.jwks_cache',
      publicMessage: `JwksCache ${name} must be a finite number of milliseconds ≥ ${min}, got ${value}`,
    });
  }
  return value;
}

function unavailable(reason: string): BrokerError {
  return new BrokerError('unavailable', {
    code: 'tokens.jwks_unavailable',
    publicMessage: 'the token-signing keys (JWKS) cannot be fetched from the broker; retry later',
    logMessage: `JWKS fetch failed: ${reason}`,
  });
}
