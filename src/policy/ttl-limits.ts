/**
 * TTL limits and the caps policy can never raise (DESIGN.md invariant 4: every credential is
 * short-lived by default; policy can only lower). Units are in names: every value is `...Ms`.
 */
import { BrokerError, formatDurationMs, HOUR_MS, MINUTE_MS, DAY_MS, SECOND_MS } from '../core/index.js';

/** The default and the longest TTL of one kind of credential, for one identity or globally. */
export interface TtlLimits {
  /** Given when a request names no TTL. Never above `maxTtlMs`. */
  readonly defaultTtlMs: number;
  /** The longest TTL a request may ask for. */
  readonly maxTtlMs: number;
}

/** Hard cap of a join token's TTL: 1 h. */
export const MAX_JOIN_TOKEN_TTL_MS = HOUR_MS;
/** Hard cap of a certificate's TTL: 24 h. */
export const MAX_CERTIFICATE_TTL_MS = DAY_MS;
/** Hard cap of a signed token's TTL: 1 h. */
export const MAX_TOKEN_TTL_MS = HOUR_MS;

/** The invariant's defaults, which a policy's defaults may lower but never exceed: 15 min. */
export const MAX_DEFAULT_JOIN_TOKEN_TTL_MS = 15 * MINUTE_MS;
/** Longest default certificate TTL a policy may set: 1 h. */
export const MAX_DEFAULT_CERTIFICATE_TTL_MS = HOUR_MS;
/** Longest default token TTL a policy may set: 5 min. */
export const MAX_DEFAULT_TOKEN_TTL_MS = 5 * MINUTE_MS;

/** Shortest TTL a policy may write: certificates and JWTs count validity in whole seconds. */
export const MIN_POLICY_TTL_MS = SECOND_MS;

/**
 * The TTL to give a request: the default when none was asked for, else the request itself.
 * A request above the maximum is refused, never silently shortened: the caller would otherwise
 * plan its renewal around a lifetime it does not have.
 *
 * @param requestedMs the TTL asked for in milliseconds; undefined for "the default"
 * @returns the TTL in milliseconds, `0 < ttl <= limits.maxTtlMs`
 * @throws BrokerError invalid `policy.ttl` when the request is not a positive whole number of
 *   milliseconds, or is above `limits.maxTtlMs` (the message names the cap)
 */
export function clampTtl(requestedMs: number | undefined, limits: TtlLimits): number {
  if (requestedMs === undefined) return limits.defaultTtlMs;
  if (!Number.isSafeInteger(requestedMs) || requestedMs <= 0) {
    throw new BrokerError('invalid', {
      code: 'policy.ttl',
      publicMessage: `the requested TTL must be a positive duration, got ${String(requestedMs)} ms`,
    });
  }
  if (requestedMs > limits.maxTtlMs) {
    throw new BrokerError('invalid', {
      code: 'policy.ttl',
      publicMessage: `the requested TTL ${formatDurationMs(requestedMs)} is above the maximum of ${formatDurationMs(limits.maxTtlMs)} that policy allows; ask for ${formatDurationMs(limits.maxTtlMs)} or less`,
    });
  }
  return requestedMs;
}
