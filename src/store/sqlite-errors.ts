/**
 * SQLite failures to BrokerErrors, at the store's edge: callers see a kind and a stable code,
 * the raw SQLite code and message stay in the log message.
 */
import Database from 'better-sqlite3';
import { BrokerError } from '../core/index.js';

/** What the failing statement was doing, to name constraint conflicts precisely. */
export interface SqliteErrorContext {
  /** e.g. `insert certificate 01ab…` (for the log). */
  readonly operation: string;
  /** The code to use for a PRIMARY KEY / UNIQUE violation (e.g. `store.certificate_exists`). */
  readonly uniqueCode?: string;
  /** The public message for that violation. */
  readonly uniqueMessage?: string;
}

/** True for SQLite's own errors (better-sqlite3's SqliteError). */
export function isSqliteError(error: unknown): error is Error & { code: string } {
  return error instanceof Database.SqliteError;
}

/**
 * Maps a thrown value to a BrokerError: BUSY/LOCKED → unavailable `store.busy` (retryable);
 * constraint violations → conflict (the context's code for PRIMARY KEY/UNIQUE, `store.append_only`
 * for the audit triggers, `store.reference` for a foreign key, `store.constraint` otherwise);
 * full disk and I/O errors → unavailable `store.io`; a damaged or foreign file → internal
 * `store.corrupt`; read-only → internal `store.read_only`;
 * anything else → internal `store.error`. BrokerErrors pass through unchanged.
 */
export function mapSqliteError(error: unknown, context: SqliteErrorContext): BrokerError {
  if (error instanceof BrokerError) return error;
  if (!isSqliteError(error)) {
    return new BrokerError('internal', { code: 'store.error', publicMessage: 'internal error', logMessage: `store: ${context.operation}: ${String(error)}`, cause: error });
  }
  const code = error.code;
  const logMessage = `store: ${context.operation}: ${code}: ${error.message}`;
  const base = { logMessage, cause: error };
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new BrokerError('unavailable', { ...base, code: 'store.busy', publicMessage: 'the store is busy; retry shortly' });
  }
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
    return new BrokerError('conflict', { ...base, code: context.uniqueCode ?? 'store.exists', publicMessage: context.uniqueMessage ?? 'the record already exists' });
  }
  if (code === 'SQLITE_CONSTRAINT_TRIGGER') {
    return new BrokerError('conflict', { ...base, code: 'store.append_only', publicMessage: 'the audit log is append-only' });
  }
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
    return new BrokerError('conflict', { ...base, code: 'store.reference', publicMessage: 'the record refers to one that does not exist' });
  }
  if (code.startsWith('SQLITE_CONSTRAINT')) {
    return new BrokerError('conflict', { ...base, code: 'store.constraint', publicMessage: 'the change breaks a rule of the store' });
  }
  if (code.startsWith('SQLITE_FULL') || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PROTOCOL')) {
    return new BrokerError('unavailable', { ...base, code: 'store.io', publicMessage: 'the store cannot read or write its file; retry later' });
  }
  if (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT')) {
    return new BrokerError('internal', { ...base, code: 'store.corrupt', publicMessage: 'the database file is damaged or is not a database' });
  }
  if (code.startsWith('SQLITE_READONLY')) {
    return new BrokerError('internal', { ...base, code: 'store.read_only', publicMessage: 'internal error' });
  }
  return new BrokerError('internal', { ...base, code: 'store.error', publicMessage: 'internal error' });
}
