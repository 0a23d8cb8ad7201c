/**
 * How the reports print figures: durations with their unit, shares as percentages with the
 * counts behind them, and a dash for a figure that has no value (an empty sample).
 */
import { MINUTE_MS, SECOND_MS } from '../../core/index.js';
import type { Ratio } from './statistics.js';

/** Printed for a figure without a value. */
export const NO_VALUE = '–';

/**
 * A duration for people: `12 ms` below a second, `1.25 s` below a minute, else hours, minutes
 * and seconds to the second (`10m`, `1h30m`, `24h`, `2m5s`): TTL caps read in hours (24h), so
 * days are not used.
 */
export function formatMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return NO_VALUE;
  if (ms < SECOND_MS) return `${Number.isInteger(ms) ? ms : ms.toFixed(1)} ms`;
  if (ms < MINUTE_MS) return `${(ms / SECOND_MS).toFixed(ms < 10 * SECOND_MS ? 2 : 1)} s`;
  const seconds = Math.round(ms / SECOND_MS);
  const parts: [number, string][] = [
    [Math.floor(seconds / 3600), 'h'],
    [Math.floor(seconds / 60) % 60, 'm'],
    [seconds % 60, 's'],
  ];
  return parts
    .filter(([count]) => count > 0)
    .map(([count, unit]) => `${count}${unit}`)
    .join('');
}

/** A share as `75.0 %`, or a dash when there is nothing to divide by. */
export function formatShare(ratio: Ratio): string {
  return ratio.share === null ? NO_VALUE : `${(ratio.share * 100).toFixed(1)} %`;
}

/** A share with its counts: `75.0 % (3/4)`, or `– (none)`. */
export function formatRatio(ratio: Ratio): string {
  return ratio.share === null ? `${NO_VALUE} (none)` : `${formatShare(ratio)} (${ratio.count}/${ratio.of})`;
}

/** A count or plain number, or a dash. */
export function formatNumber(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return NO_VALUE;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

/** Hours with up to two decimals and the unit: `1 h`, `1.25 h`. */
export function formatHours(hours: number): string {
  return `${Number(hours.toFixed(2))} h`;
}

/** `1 rotation`, `2 rotations`. */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}
