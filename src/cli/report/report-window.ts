/**
 * The time window of `credbroker report`: `--since 24h` (the default) or `--from ISO [--to ISO]`,
 * half-open like the audit query (`from` ≤ time < `to`).
 */
import { BrokerError, parseDurationMs } from '../../core/index.js';

/** Default window when none is given: the last 24 hours. */
export const DEFAULT_REPORT_SINCE = '24h';

/** A report's window. */
export interface ReportWindow {
  /** Inclusive start. */
  readonly from: Date;
  /** Exclusive end. */
  readonly to: Date;
  /**
   * The instant state is read at (live certificates, outstanding join tokens): `to`, or the
   * report time when `to` is in the future.
   */
  readonly asOf: Date;
  /** How the window was asked for, for headings: `last 24h` or `2026-03-01T00:00:00.000Z … 2026-03-02T00:00:00.000Z`. */
  readonly label: string;
}

/** The window flags as commander gives them. */
export interface ReportWindowFlags {
  readonly since?: string | undefined;
  readonly from?: string | undefined;
  readonly to?: string | undefined;
}

/** A date, or a date and time with `Z` or an offset: a time without a zone would depend on the host. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

function usage(message: string): BrokerError {
  return new BrokerError('invalid', { code: 'cli.report_window', publicMessage: message });
}

/** True for a calendar date that exists (Date would roll 2026-02-30 over to March 2). */
function realDate(text: string): boolean {
  const [year, month, day] = text.slice(0, 10).split('-').map(Number);
  if (year === undefined || month === undefined || day === undefined) return false;
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

function parseInstant(flag: string, text: string): Date {
  const value = ISO_INSTANT.test(text) && realDate(text) ? new Date(text) : null;
  if (value === null || Number.isNaN(value.getTime())) {
    throw usage(`${flag} "${text.slice(0, 60)}" is not an ISO 8601 instant: use e.g. 2026-03-01 (UTC midnight) or 2026-03-01T09:00:00Z`);
  }
  return value;
}

/**
 * The window the flags ask for, at report time `now`.
 * @throws BrokerError invalid `cli.report_window` (a usage error, exit 2) for `--since` together
 *   with `--from`/`--to`, `--to` without `--from`, a malformed duration or instant, a zero
 *   duration, or `from` not before `to`
 */
export function parseReportWindow(flags: ReportWindowFlags, now: Date): ReportWindow {
  if (flags.since !== undefined && (flags.from !== undefined || flags.to !== undefined)) {
    throw usage('give either --since or --from/--to, not both');
  }
  if (flags.from === undefined) {
    if (flags.to !== undefined) throw usage('--to needs --from');
    const since = flags.since ?? DEFAULT_REPORT_SINCE;
    let sinceMs: number;
    try {
      sinceMs = parseDurationMs(since);
    } catch (error) {
      throw usage(`--since: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (sinceMs <= 0) throw usage('--since must be longer than 0');
    return { from: new Date(now.getTime() - sinceMs), to: now, asOf: now, label: `last ${since.trim()}` };
  }
  const from = parseInstant('--from', flags.from);
  const to = flags.to === undefined ? now : parseInstant('--to', flags.to);
  if (from.getTime() >= to.getTime()) throw usage(`--from (${from.toISOString()}) must be before --to (${to.toISOString()})`);
  const asOf = to.getTime() > now.getTime() ? now : to;
  return { from, to, asOf, label: `${from.toISOString()} … ${to.toISOString()}` };
}
