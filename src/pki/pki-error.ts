/**
 * Shorthands for the BrokerErrors of this package. Public messages say what was wrong with the
 * caller's input; internal ones keep details for the log and say only "internal error".
 */
import { BrokerError } from '../core/index.js';

/** Bad caller input (INVALID_ARGUMENT): `code` like `pki.ttl`, `message` says what was wrong. */
export function invalid(code: string, message: string, cause?: unknown): BrokerError {
  return new BrokerError('invalid', { code, publicMessage: message, ...(cause === undefined ? {} : { cause }) });
}

/** Authenticated but not allowed by policy or authorization (PERMISSION_DENIED). */
export function denied(code: string, message: string): BrokerError {
  return new BrokerError('denied', { code, publicMessage: message });
}

/** The state does not allow it, e.g. the issuing CA has expired (FAILED_PRECONDITION). */
export function conflict(code: string, message: string): BrokerError {
  return new BrokerError('conflict', { code, publicMessage: message });
}

/** A bug or misconfiguration (INTERNAL): `logMessage` stays in the log. */
export function internal(code: string, logMessage: string, cause?: unknown): BrokerError {
  return new BrokerError('internal', {
    code,
    publicMessage: 'internal error',
    logMessage,
    ...(cause === undefined ? {} : { cause }),
  });
}
