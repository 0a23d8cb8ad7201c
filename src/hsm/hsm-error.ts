/**
 * PKCS#11 return codes become named errors here, at the `hsm` edge (STYLE.md "Errors").
 *
 * The public message says which token, which key and what to do; the raw CKR name stays in the
 * log message. PIN errors are fatal and never retried: each retry burns one of the token's few
 * PIN attempts. Lost sessions and devices are `unavailable` and retried with backoff.
 */
import pkcs11js from 'pkcs11js';
import { BrokerError } from '../core/index.js';

/** What was being done when PKCS#11 failed, for the message. */
export interface HsmErrorContext {
  /** e.g. `login`, `sign`, `generate key`, `find key`. */
  readonly operation: string;
  /** Token label. */
  readonly token: string;
  /** Key label, when a key is involved. */
  readonly key?: string;
}

const CKR_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(pkcs11js)
    .filter((entry): entry is [string, number] => entry[0].startsWith('CKR_') && typeof entry[1] === 'number')
    .map(([name, code]) => [code, name]),
);

/** CKR codes meaning the session, token or device is gone: reconnect and retry later. */
const LOST = new Set([
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_DEVICE_REMOVED',
  'CKR_DEVICE_ERROR',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
  'CKR_SLOT_ID_INVALID',
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
  'CKR_GENERAL_ERROR',
  'CKR_FUNCTION_FAILED',
  'CKR_DEVICE_MEMORY',
  'CKR_HOST_MEMORY',
]);

/** The CKR name of a pkcs11js error (`CKR_PIN_INCORRECT`), or null if it is not one. */
export function ckrName(error: unknown): string | null {
  if (!(error instanceof Error)) return null;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'number' && code !== 0) return CKR_NAMES.get(code) ?? `CKR_0x${code.toString(16)}`;
  const match = /CKR_[A-Z_]+/.exec(error.message);
  return match?.[0] ?? null;
}

/** True if the error means the session or device is lost (the caller should reconnect). */
export function isSessionLost(error: unknown): boolean {
  if (error instanceof BrokerError) return error.code === 'hsm.session_lost';
  const name = ckrName(error);
  return name !== null && LOST.has(name);
}

/**
 * Turns anything pkcs11js threw into a BrokerError with a message for people.
 * BrokerErrors pass through unchanged.
 */
export function toHsmError(error: unknown, context: HsmErrorContext): BrokerError {
  if (error instanceof BrokerError) return error;
  const name = ckrName(error) ?? (error instanceof Error ? error.message : String(error));
  const where = `token "${context.token}"${context.key === undefined ? '' : `, key "${context.key}"`}`;
  const logMessage = `${context.operation} failed on ${where}: ${name}`;
  const make = (
    kind: BrokerError['kind'],
    code: string,
    publicMessage: string,
    retryable = false,
  ): BrokerError => new BrokerError(kind, { code, publicMessage, logMessage, cause: error, retryable });

  switch (name) {
    case 'CKR_PIN_INCORRECT':
      return make(
        'unauthenticated',
        'hsm.pin_incorrect',
        `the PIN for ${where} is incorrect; not retried, since every attempt counts toward locking the token: check the PIN source`,
      );
    case 'CKR_PIN_LOCKED':
      return make(
        'unauthenticated',
        'hsm.pin_locked',
        `the user PIN of ${where} is locked after too many wrong attempts: a security officer must unlock it (SO login, C_InitPIN)`,
      );
    case 'CKR_PIN_EXPIRED':
      return make('unauthenticated', 'hsm.pin_expired', `the PIN of ${where} has expired: set a new one with the token's tools`);
    case 'CKR_PIN_LEN_RANGE':
    case 'CKR_PIN_INVALID':
      return make('invalid', 'hsm.pin_invalid', `the PIN given for ${where} has a length or characters the token refuses`);
    case 'CKR_MECHANISM_INVALID':
    case 'CKR_MECHANISM_PARAM_INVALID':
    case 'CKR_KEY_TYPE_INCONSISTENT':
    case 'CKR_DOMAIN_PARAMS_INVALID':
    case 'CKR_CURVE_NOT_SUPPORTED':
    case 'CKR_TEMPLATE_INCONSISTENT':
      return make('invalid', 'hsm.mechanism_unsupported', `${context.operation} on ${where}: the token does not support this mechanism or key type`);
    case 'CKR_KEY_HANDLE_INVALID':
    case 'CKR_OBJECT_HANDLE_INVALID':
      return make('unavailable', 'hsm.session_lost', `${where}: the key handle is no longer valid (token re-initialised or reconnected); retry`, true);
    case 'CKR_OPERATION_ACTIVE':
      return make('internal', 'hsm.operation_active', `${context.operation} on ${where}: a previous operation is still active on the session`);
    case 'CKR_DATA_LEN_RANGE':
    case 'CKR_DATA_INVALID':
      return make('invalid', 'hsm.data_invalid', `${context.operation} on ${where}: the data has a length the mechanism refuses`);
    case 'CKR_TOKEN_WRITE_PROTECTED':
      return make('conflict', 'hsm.token_read_only', `${where} is write-protected`);
    default:
      if (LOST.has(name)) {
        return make(
          'unavailable',
          'hsm.session_lost',
          `${where} is not reachable (session or device lost); the broker reconnects with backoff, retry later`,
          true,
        );
      }
      return make('internal', 'hsm.failed', `${context.operation} on ${where} failed; see the broker log`);
  }
}
