/**
 * Certificate validity as a pure function of `now` (STYLE.md): `notBefore = now − backdate`,
 * `notAfter = min(now + ttl, issuer's notAfter)`.
 */
import { formatDurationMs, HOUR_MS, MINUTE_MS } from '../core/index.js';
import { conflict, internal, invalid } from './pki-error.js';

/** How long certificates live. Every value in milliseconds. */
export interface ValidityPolicy {
  /** `notBefore` is set this far before `now`, for peers whose clocks run slow (≥ 0). */
  readonly backdateMs: number;
  /** TTL when the request names none (> 0, ≤ maxTtlMs). */
  readonly defaultTtlMs: number;
  /** Largest TTL a request may ask for; larger requests are refused, never clamped. */
  readonly maxTtlMs: number;
}

/** Hard cap of a leaf certificate's TTL (DESIGN.md invariant 4): 24 h. Policy can only lower. */
export const MAX_LEAF_TTL_MS = 24 * HOUR_MS;

/**
 * Leaf defaults (DESIGN.md invariant 4): 1 h default TTL, 24 h cap, backdated 1 minute.
 * One minute covers the clock skew of NTP-synchronised hosts (step-ca uses the same) while
 * adding under 2 % to a 1 h certificate's life.
 */
export const LEAF_VALIDITY_DEFAULTS: ValidityPolicy = Object.freeze({
  backdateMs: MINUTE_MS,
  defaultTtlMs: HOUR_MS,
  maxTtlMs: MAX_LEAF_TTL_MS,
});

/** A certificate's validity period (whole seconds, as X.509 encodes it). */
export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Computes a certificate's validity.
 *
 * Both instants are rounded down to whole seconds (X.509 times have no fractions; rounding
 * notAfter down keeps it within the issuer's).
 * @param now the current instant (from a Clock)
 * @param requestedTtlMs the TTL the caller asked for, or undefined for `policy.defaultTtlMs`
 * @param policy backdate, default and cap
 * @param issuerNotAfter the issuing CA's notAfter: no certificate outlives its issuer
 * @throws BrokerError invalid `pki.ttl` if the TTL is not a positive whole number of ms or is
 *   above `policy.maxTtlMs` (refused, never silently clamped);
 *   conflict `pki.issuer_expired` if the issuer has expired at `now`;
 *   internal `pki.validity_policy` if the policy itself is inconsistent
 */
export function computeValidity(now: Date, requestedTtlMs: number | undefined, policy: ValidityPolicy, issuerNotAfter: Date): Validity {
  checkValidityPolicy(policy);
  const nowMs = now.getTime();
  if (!Number.isFinite(nowMs)) throw internal('pki.validity', 'now is not a valid date');
  if (requestedTtlMs !== undefined) {
    if (!Number.isSafeInteger(requestedTtlMs) || requestedTtlMs <= 0) {
      throw invalid('pki.ttl', `TTL must be a positive whole number of milliseconds, got ${String(requestedTtlMs)}`);
    }
    if (requestedTtlMs > policy.maxTtlMs) {
      throw invalid(
        'pki.ttl',
        `requested TTL ${formatDurationMs(requestedTtlMs)} exceeds the maximum of ${formatDurationMs(policy.maxTtlMs)}`,
      );
    }
  }
  const ttlMs = requestedTtlMs ?? policy.defaultTtlMs;
  const issuerEndMs = issuerNotAfter.getTime();
  if (!(issuerEndMs > nowMs)) {
    throw conflict('pki.issuer_expired', `the issuing CA expired at ${issuerNotAfter.toISOString()}; no certificate can be issued`);
  }
  const notBefore = floorToSecond(nowMs - policy.backdateMs);
  const notAfter = floorToSecond(Math.min(nowMs + ttlMs, issuerEndMs));
  if (notAfter <= notBefore) {
    throw conflict('pki.issuer_expired', `the issuing CA expires at ${issuerNotAfter.toISOString()}, too soon to issue`);
  }
  return { notBefore: new Date(notBefore), notAfter: new Date(notAfter) };
}

/**
 * Checks a validity policy's consistency.
 * @throws BrokerError internal `pki.validity_policy` (policies come from configuration)
 */
export function checkValidityPolicy(policy: ValidityPolicy): void {
  const { backdateMs, defaultTtlMs, maxTtlMs } = policy;
  const whole = (value: number): boolean => Number.isSafeInteger(value);
  if (!whole(backdateMs) || backdateMs < 0 || !whole(defaultTtlMs) || defaultTtlMs <= 0 || !whole(maxTtlMs) || maxTtlMs < defaultTtlMs) {
    throw internal(
      'pki.validity_policy',
      `inconsistent validity policy: backdateMs=${backdateMs} defaultTtlMs=${defaultTtlMs} maxTtlMs=${maxTtlMs}`,
    );
  }
}

function floorToSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

/**
 * Checks a CA certificate's validity period as a ceremony plan gives it: both valid dates and
 * notAfter after notBefore (compared in whole seconds, as X.509 encodes them).
 * @throws BrokerError invalid `pki.validity`
 */
export function checkCaValidity(notBefore: Date, notAfter: Date): void {
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    throw invalid('pki.validity', 'notBefore and notAfter must be valid dates');
  }
  if (floorToSecond(notAfter.getTime()) <= floorToSecond(notBefore.getTime())) {
    throw invalid('pki.validity', `notAfter (${notAfter.toISOString()}) must be after notBefore (${notBefore.toISOString()})`);
  }
}
