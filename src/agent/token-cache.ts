/**
 * Cached access tokens for a service: one per (audience, scopes, binding, TTL), fetched again at
 * three quarters of its lifetime, so callers ask for a token on every request and the broker sees
 * one IssueToken per token lifetime. Concurrent callers of a missing token share one fetch.
 */
import { BrokerError, type Clock } from '../core/index.js';
import type { IssuedToken, TokenRequest } from './broker-transport.js';

/** Refetch a token once this fraction of its lifetime has passed. */
export const TOKEN_REFRESH_FRACTION = 0.75;
/** Most distinct tokens kept; beyond it, expired entries go first, then the oldest. */
export const MAX_CACHED_TOKENS = 256;

/** Options of {@link TokenCache}. */
export interface TokenCacheOptions {
  /** Fetches a new token (Tokens/IssueToken over mTLS). */
  readonly fetch: (request: TokenRequest) => Promise<IssuedToken>;
  readonly clock: Clock;
}

interface Entry {
  readonly token: string;
  readonly refreshAtMs: number;
  readonly expiresAtMs: number;
}

/** Tokens per request key, refreshed at 3/4 of their lifetime. */
export class TokenCache {
  readonly #fetch: (request: TokenRequest) => Promise<IssuedToken>;
  readonly #clock: Clock;
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, Promise<string>>();
  #generation = 0;

  constructor(options: TokenCacheOptions) {
    this.#fetch = options.fetch;
    this.#clock = options.clock;
  }

  /**
   * A token for the request: the cached one while younger than 3/4 of its lifetime, else a new
   * one. If fetching fails while the cached token is still valid, the cached one is returned
   * (the next call tries again).
   * @throws BrokerError from the fetch (e.g. `denied` when policy grants no such token)
   */
  async token(request: TokenRequest): Promise<string> {
    const key = cacheKey(request);
    const now = this.#clock.now().getTime();
    const cached = this.#entries.get(key);
    if (cached !== undefined && now < cached.refreshAtMs) return cached.token;
    const running = this.#inFlight.get(key);
    if (running !== undefined) return running;
    const generation = this.#generation;
    const fetching = (async (): Promise<string> => {
      const startedMs = this.#clock.now().getTime();
      try {
        const issued = await this.#fetch(request);
        const expiresAtMs = issued.expiresAtUnix * 1000;
        const lifetimeMs = Math.max(0, expiresAtMs - startedMs);
        // A token minted for a certificate that has since been replaced is not cached.
        if (generation === this.#generation) this.#store(key, { token: issued.token, expiresAtMs, refreshAtMs: startedMs + Math.floor(lifetimeMs * TOKEN_REFRESH_FRACTION) });
        return issued.token;
      } catch (error) {
        const stale = this.#entries.get(key);
        if (stale !== undefined && this.#clock.now().getTime() < stale.expiresAtMs) return stale.token;
        throw error;
      }
    })().finally(() => {
      this.#inFlight.delete(key);
    });
    this.#inFlight.set(key, fetching);
    return fetching;
  }

  /** Forgets every token (e.g. after a certificate rotation, which unbinds bound tokens). */
  clear(): void {
    this.#generation++;
    this.#entries.clear();
    this.#inFlight.clear();
  }

  /** Number of cached tokens. */
  get size(): number {
    return this.#entries.size;
  }

  #store(key: string, entry: Entry): void {
    this.#entries.delete(key);
    if (this.#entries.size >= MAX_CACHED_TOKENS) {
      const now = this.#clock.now().getTime();
      for (const [k, e] of this.#entries) if (e.expiresAtMs <= now) this.#entries.delete(k);
      const oldest = this.#entries.keys().next();
      if (this.#entries.size >= MAX_CACHED_TOKENS && oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, entry);
  }
}

/**
 * The cache key of a request: audience, scopes (sorted, deduplicated: order does not change a
 * token), binding and requested TTL.
 * @throws BrokerError invalid `agent.token_request` for an empty audience or no scopes
 */
export function cacheKey(request: TokenRequest): string {
  if (request.audience === '' || request.scopes.length === 0) {
    throw new BrokerError('invalid', { code: 'agent.token_request', publicMessage: 'a token needs an audience and at least one scope' });
  }
  const scopes = [...new Set(request.scopes)].sort();
  return JSON.stringify([request.audience, scopes, request.bindToCertificate ?? false, request.ttlSeconds ?? 0]);
}
