/**
 * The process logger: pino JSON lines on stderr, with a redaction list as a second line of
 * defence (secrets are never passed to the logger in the first place).
 */
import { pino } from 'pino';
import type { Logger } from '../core/index.js';

/** Field paths pino replaces with `[redacted]` wherever they appear. */
export const REDACTED_PATHS: readonly string[] = Object.freeze([
  'pin',
  '*.pin',
  'soPin',
  '*.soPin',
  'joinToken',
  '*.joinToken',
  'token',
  '*.token',
  'privateKey',
  '*.privateKey',
  'csr',
  '*.csr',
  'password',
  '*.password',
  'secret',
  '*.secret',
]);

/** A pino logger at `level` writing JSON to stderr. */
export function createLogger(level: string = process.env.CREDBROKER_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'credbroker' }, redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' } }, pino.destination(2));
}
