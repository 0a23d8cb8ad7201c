/**
 * The logging interface modules accept (pino's call shape: structured fields, then a message).
 * Only the composition root creates a real logger; modules default to {@link silentLogger}.
 * Never pass a Secret's value, a PIN, a join token or key material as a field.
 */

/** One log method: structured fields first, then a human message. */
export type LogMethod = (fields: Record<string, unknown>, message: string) => void;

/** A structured logger. pino's Logger satisfies it. */
export interface Logger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
}

const ignore: LogMethod = () => undefined;

/** A logger that drops everything. */
export const silentLogger: Logger = Object.freeze({ debug: ignore, info: ignore, warn: ignore, error: ignore });
