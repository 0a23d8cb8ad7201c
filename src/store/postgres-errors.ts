/**
 * PostgreSQL failures to BrokerErrors, at the store's edge, with the same kinds and codes as the
 * SQLite store (sqlite-errors.ts): callers see a kind and a stable code, the SQLSTATE and the
 * server's message stay in the log message. The server's message never reaches a client: it can
 * name tables, values and the database.
 */
import pg from 'pg';
import { BrokerError } from '../core/index.js';

/** What the failing statement was doing, to name constraint conflicts precisely. */
export interface PostgresErrorContext {
  /** e.g. `insert certificate 01ab…` (for the log). */
  readonly operation: string;
  /** The code to use for a PRIMARY KEY / UNIQUE violation (e.g. `store.certificate_exists`). */
  readonly uniqueCode?: string;
  /** The public message for that violation. */
  readonly uniqueMessage?: string;
}

/** SQLSTATE raised by the audit tables' append-only triggers (postgres-migrations.ts). */
export const APPEND_ONLY_SQLSTATE = 'CBA01';

/** SQLSTATEs after which running the same transaction again can succeed. */
const BUSY_STATES: ReadonlySet<string> = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available (lock_timeout)
  '57014', // query_canceled (statement_timeout)
  '25P03', // idle_in_transaction_session_timeout
]);

/** Node socket errors of a connection that could not be made or was lost. */
const SOCKET_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'EACCES']);

/** True for an error the PostgreSQL server sent (it carries a SQLSTATE). */
export function isPostgresError(error: unknown): error is pg.DatabaseError {
  return error instanceof pg.DatabaseError;
}

/**
 * True when `error` means the connection to the server failed or was lost (no SQLSTATE, or class
 * 08, or the server shutting down): the transaction never committed, or its outcome is unknown.
 */
export function isConnectionError(error: unknown): boolean {
  if (isPostgresError(error)) {
    const state = error.code ?? '';
    return state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03';
  }
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && SOCKET_CODES.has(code)) return true;
  // pg's own wording for a lost or never-made connection.
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection closed|not queryable/i.test(error.message);
}

/**
 * Maps a thrown value to a BrokerError:
 * - unique violation (23505) → conflict with the context's code (`store.exists` by default);
 *   foreign key (23503) → conflict `store.reference`; the append-only triggers → conflict
 *   `store.append_only`; other integrity violations (class 23) → conflict `store.constraint`;
 * - serialization failure, deadlock, lock or statement timeout → unavailable `store.busy` (retry);
 * - a connection that cannot be made or was lost, the server shutting down, too many connections,
 *   a refused login → unavailable `store.unavailable` (retry later);
 * - disk full and I/O errors on the server (53100, class 58) → unavailable `store.io`;
 * - text PostgreSQL cannot store (a NUL character, class 22) → internal `store.invalid_record`;
 * - a statement on a transaction that already failed (25P02) → internal `store.tx_aborted`;
 * - anything else → internal `store.error`. BrokerErrors pass through unchanged.
 */
export function mapPostgresError(error: unknown, context: PostgresErrorContext): BrokerError {
  if (error instanceof BrokerError) return error;
  if (!isPostgresError(error)) {
    if (isConnectionError(error)) {
      return new BrokerError('unavailable', {
        code: 'store.unavailable',
        publicMessage: 'the store cannot be reached; retry shortly',
        logMessage: `store: ${context.operation}: ${error instanceof Error ? error.message : String(error)}`,
        cause: error,
      });
    }
    return new BrokerError('internal', { code: 'store.error', publicMessage: 'internal error', logMessage: `store: ${context.operation}: ${String(error)}`, cause: error });
  }
  const state = error.code ?? '';
  const where = error.constraint === undefined ? '' : ` (constraint ${error.constraint})`;
  const logMessage = `store: ${context.operation}: SQLSTATE ${state}: ${error.message}${where}`;
  const base = { logMessage, cause: error };
  if (state === '23505') {
    return new BrokerError('conflict', { ...base, code: context.uniqueCode ?? 'store.exists', publicMessage: context.uniqueMessage ?? 'the record already exists' });
  }
  if (state === APPEND_ONLY_SQLSTATE) {
    return new BrokerError('conflict', { ...base, code: 'store.append_only', publicMessage: 'the audit log is append-only' });
  }
  if (state === '23503') {
    return new BrokerError('conflict', { ...base, code: 'store.reference', publicMessage: 'the record refers to one that does not exist' });
  }
  if (state.startsWith('23')) {
    return new BrokerError('conflict', { ...base, code: 'store.constraint', publicMessage: 'the change breaks a rule of the store' });
  }
  if (BUSY_STATES.has(state)) {
    return new BrokerError('unavailable', { ...base, code: 'store.busy', publicMessage: 'the store is busy; retry shortly' });
  }
  if (isConnectionError(error) || state === '53300' || state.startsWith('28') || state === '3D000') {
    return new BrokerError('unavailable', { ...base, code: 'store.unavailable', publicMessage: 'the store cannot be reached; retry shortly' });
  }
  if (state.startsWith('53') || state.startsWith('58')) {
    return new BrokerError('unavailable', { ...base, code: 'store.io', publicMessage: 'the store cannot read or write its data; retry later' });
  }
  if (state.startsWith('22')) {
    return new BrokerError('internal', { ...base, code: 'store.invalid_record', publicMessage: 'internal error' });
  }
  if (state === '25P02') {
    return new BrokerError('internal', {
      ...base,
      code: 'store.tx_aborted',
      publicMessage: 'internal error',
      logMessage: `store: ${context.operation}: the transaction already failed (an earlier statement's error was caught and the work went on)`,
    });
  }
  return new BrokerError('internal', { ...base, code: 'store.error', publicMessage: 'internal error' });
}
