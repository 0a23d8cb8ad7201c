/**
 * The one error hierarchy of credbroker (STYLE.md "Errors").
 *
 * Every failure that crosses a module boundary is a {@link BrokerError}. Its `kind` decides the
 * gRPC status at the server edge (one table there); `publicMessage` is what a caller may see
 * (what was wrong with *their* input); `logMessage` may name tokens, keys and raw PKCS#11 codes
 * and stays in the log.
 */

/** What went wrong, from the caller's point of view. */
export type ErrorKind =
  | 'invalid' // the input is malformed or breaks a rule: INVALID_ARGUMENT
  | 'unauthenticated' // no or bad credentials: UNAUTHENTICATED
  | 'denied' // authenticated but not allowed: PERMISSION_DENIED
  | 'not_found' // NOT_FOUND
  | 'conflict' // already exists / state does not allow it: ALREADY_EXISTS or FAILED_PRECONDITION
  | 'exhausted' // quota, rate or pool limits: RESOURCE_EXHAUSTED
  | 'unavailable' // a dependency (HSM, store) is down; retry later: UNAVAILABLE
  | 'internal'; // a bug or an invariant broken: INTERNAL

/** Every kind, for exhaustive tables and tests. */
export const ERROR_KINDS: readonly ErrorKind[] = Object.freeze([
  'invalid',
  'unauthenticated',
  'denied',
  'not_found',
  'conflict',
  'exhausted',
  'unavailable',
  'internal',
]);

/** Options of a {@link BrokerError}. */
export interface BrokerErrorOptions {
  /** Stable machine-readable name of the failure, e.g. `hsm.pin_incorrect`. */
  readonly code: string;
  /** Safe for callers: says what was wrong with their input or what to do. */
  readonly publicMessage: string;
  /** For the log only: may name tokens, keys, files and raw codes. Defaults to publicMessage. */
  readonly logMessage?: string;
  /** The error this one wraps (kept for the log, never sent to callers). */
  readonly cause?: unknown;
  /** True when repeating the same call later may succeed (never for PIN errors). */
  readonly retryable?: boolean;
}

/** A failure with a kind, a public message and a log message. */
export class BrokerError extends Error {
  override readonly name: string = 'BrokerError';
  readonly kind: ErrorKind;
  readonly code: string;
  readonly publicMessage: string;
  readonly logMessage: string;
  readonly retryable: boolean;

  constructor(kind: ErrorKind, options: BrokerErrorOptions) {
    const logMessage = options.logMessage ?? options.publicMessage;
    super(logMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.code = options.code;
    this.publicMessage = options.publicMessage;
    this.logMessage = logMessage;
    this.retryable = options.retryable ?? kind === 'unavailable';
  }

  /** A structured view for loggers: no stack, no cause chain beyond names and messages. */
  toLogObject(): Record<string, unknown> {
    return {
      kind: this.kind,
      code: this.code,
      message: this.logMessage,
      ...(this.cause === undefined ? {} : { cause: describeCause(this.cause) }),
    };
  }
}

/** True if `value` is a BrokerError, optionally of the given kind (an {@link ErrorKind}) or code. */
export function isBrokerError(value: unknown, kindOrCode?: string): value is BrokerError {
  if (!(value instanceof BrokerError)) return false;
  return kindOrCode === undefined || value.kind === kindOrCode || value.code === kindOrCode;
}

/**
 * Wraps any thrown value into a BrokerError of kind internal, keeping BrokerErrors as they are.
 * The public message of an internal error never includes the original text.
 */
export function toBrokerError(error: unknown, code = 'internal'): BrokerError {
  if (error instanceof BrokerError) return error;
  return new BrokerError('internal', {
    code,
    publicMessage: 'internal error',
    logMessage: error instanceof Error ? error.message : String(error),
    cause: error,
  });
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return `${cause.name}: ${cause.message}`;
  return String(cause);
}
