/**
 * Durations written by people (`90s`, `15m`, `1h30m`, `7d`) to milliseconds and back.
 * Units are in names throughout the code base: every parsed value is `...Ms`.
 */

const UNIT_MS: Readonly<Record<string, number>> = Object.freeze({
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
});

const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;
const PART = /(\d+)(ms|s|m|h|d)/g;

/** Milliseconds in common spans, for readable constants. */
export const SECOND_MS = 1_000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/**
 * Parses a duration such as `250ms`, `30s`, `15m`, `1h30m` or `365d` into milliseconds.
 * Every part needs a unit (a bare number is ambiguous); the total must be a safe integer.
 * @throws RangeError naming the text and the expected form
 */
export function parseDurationMs(text: string): number {
  const trimmed = text.trim();
  if (!DURATION.test(trimmed)) {
    throw new RangeError(
      `"${text}" is not a duration: use a number with a unit (ms, s, m, h, d), e.g. 90s, 15m, 1h30m`,
    );
  }
  let totalMs = 0;
  for (const [, amount, unit] of trimmed.matchAll(PART)) {
    totalMs += Number(amount) * (UNIT_MS[unit ?? ''] ?? Number.NaN);
  }
  if (!Number.isSafeInteger(totalMs)) throw new RangeError(`duration "${text}" is too large`);
  return totalMs;
}

/** Formats milliseconds as the shortest duration text that parses back to the same value. */
export function formatDurationMs(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`cannot format ${ms} ms as a duration`);
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = ms;
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const size = UNIT_MS[unit] ?? 1;
    const count = Math.floor(rest / size);
    if (count > 0) {
      parts.push(`${count}${unit}`);
      rest -= count * size;
    }
  }
  return parts.join('');
}
