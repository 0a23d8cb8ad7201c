/**
 * When to renew, retry and warn, as pure functions of a certificate's validity and `now`
 * (STYLE.md; the shape of SPIRE's rotation decisions). The agent's timers only call these.
 */
import type { RandomSource } from '../core/index.js';

/** Renewal timing, in the units of its names. */
export interface RenewalTiming {
  /** Renew at this fraction of the certificate's lifetime (notBefore → notAfter); default 2/3. */
  readonly renewAtFraction: number;
  /**
   * Up to this fraction of the lifetime earlier (drawn uniformly), so a fleet enrolled together
   * does not renew in the same second; default 0.1. Must be smaller than `renewAtFraction`.
   */
  readonly jitterFraction: number;
  /** First retry delay after a failure; default 1 s. */
  readonly backoffInitialMs: number;
  /** Cap of the retry delay; default 60 s. */
  readonly backoffMaxMs: number;
  /** Warn when the certificate is still not renewed this long before it expires; default 10 min. */
  readonly warnBeforeMs: number;
}

/** The defaults of {@link RenewalTiming}. */
export const DEFAULT_RENEWAL_TIMING: RenewalTiming = Object.freeze({
  renewAtFraction: 2 / 3,
  jitterFraction: 0.1,
  backoffInitialMs: 1_000,
  backoffMaxMs: 60_000,
  warnBeforeMs: 600_000,
});

/** A certificate's validity, milliseconds since the epoch. */
export interface Validity {
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

/**
 * The instant to renew a certificate: `notBefore + lifetime × (renewAtFraction − jitterFraction × u)`
 * with `u` in [0, 1). With the defaults, between 56.7 % and 66.7 % of the lifetime.
 * @param u a uniform draw in [0, 1) (see {@link uniformFraction})
 */
export function renewAtMs(validity: Validity, timing: Pick<RenewalTiming, 'renewAtFraction' | 'jitterFraction'>, u: number): number {
  const lifetimeMs = Math.max(0, validity.notAfterMs - validity.notBeforeMs);
  const draw = Math.min(Math.max(u, 0), 1);
  const fraction = Math.max(0, timing.renewAtFraction - timing.jitterFraction * draw);
  return validity.notBeforeMs + Math.floor(lifetimeMs * fraction);
}

/**
 * The retry delay after `failures` consecutive failures (1 for the first): `initial × 2^(failures−1)`,
 * capped at `max`. No jitter here: retries of one agent are already spread by its renewal time.
 */
export function backoffDelayMs(failures: number, timing: Pick<RenewalTiming, 'backoffInitialMs' | 'backoffMaxMs'>): number {
  if (failures <= 0) return 0;
  // 2^30 × 1 ms is already far above any sane cap; stop doubling before the number grows silly.
  const exponent = Math.min(failures - 1, 30);
  return Math.min(timing.backoffMaxMs, timing.backoffInitialMs * 2 ** exponent);
}

/**
 * When to warn that a certificate is about to expire unrenewed: `warnBefore` before its end,
 * but never before its renewal time (a certificate shorter than `warnBefore` is not an alarm
 * until its renewal has failed).
 */
export function warnAtMs(validity: Validity, renewAt: number, timing: Pick<RenewalTiming, 'warnBeforeMs'>): number {
  return Math.max(renewAt, validity.notAfterMs - timing.warnBeforeMs);
}

/** A uniform draw in [0, 1) from 32 random bits. */
export function uniformFraction(random: RandomSource): number {
  return random.bytes(4).readUInt32BE(0) / 2 ** 32;
}
