/**
 * Rows as both SQL stores read them, and their records: one mapping for SQLite and PostgreSQL.
 * Integer columns arrive as numbers from SQLite and as text from PostgreSQL (int8), booleans as
 * 0/1 and as booleans; everything else is the same, so is the SQL that names the columns.
 */
import { BrokerError } from '../core/index.js';
import type { AuditCheckpoint, AuditEntry, AuditOutcome } from './audit-records.js';
import type { CertificateProfileName, CertificateRecord, JoinTokenRecord, RotationRecord, RotationTargetRecord, RotationTargetStatus, StoredRevocationReason } from './store.js';

/** An integer column: a number (SQLite) or its decimal text (PostgreSQL int8). */
export type IntColumn = number | string;

/** Milliseconds since the epoch in an integer column, as a Date. */
const dateOf = (ms: IntColumn): Date => new Date(Number(ms));

export interface CertificateRow {
  serial: string;
  spiffe_id: string;
  profile: string;
  not_before: IntColumn;
  not_after: IntColumn;
  issued_at: IntColumn;
  sha256: string;
  spki_sha256: string;
  issuer_serial: string;
  renewed_from: string | null;
  der: Buffer;
  revoked_at: IntColumn | null;
  revocation_reason: string | null;
}

export interface RotationRow {
  id: string;
  selector: string;
  reason: string;
  requested_by: string;
  requested_at: IntColumn;
}

export interface RotationTargetRow {
  rotation_id: string;
  serial: string;
  spiffe_id: string;
  not_after: IntColumn;
  connected: number | boolean;
  status: string;
  new_serial: string | null;
  finished_at: IntColumn | null;
}

export interface JoinTokenRow {
  id: string;
  hash: string;
  spiffe_id: string;
  created_by: string;
  created_at: IntColumn;
  expires_at: IntColumn;
  used_at: IntColumn | null;
  used_for_serial: string | null;
}

export interface AuditEntryRow {
  seq: IntColumn;
  time: IntColumn;
  request_id: string;
  actor: string;
  action: string;
  outcome: string;
  subject: string;
  reason: string;
  details: string;
  prev_hash: string;
  hash: string;
}

export interface AuditCheckpointRow {
  seq: IntColumn;
  hash: string;
  time: IntColumn;
  algorithm: string;
  key_spki_sha256: string;
  signature: string;
}

export const CERTIFICATE_COLUMNS =
  'serial, spiffe_id, profile, not_before, not_after, issued_at, sha256, spki_sha256, issuer_serial, renewed_from, der, revoked_at, revocation_reason';
export const ROTATION_COLUMNS = 'id, selector, reason, requested_by, requested_at';
export const ROTATION_TARGET_COLUMNS = 'rotation_id, serial, spiffe_id, not_after, connected, status, new_serial, finished_at';
export const JOIN_TOKEN_COLUMNS = 'id, hash, spiffe_id, created_by, created_at, expires_at, used_at, used_for_serial';
export const AUDIT_COLUMNS = 'seq, time, request_id, actor, action, outcome, subject, reason, details, prev_hash, hash';
export const CHECKPOINT_COLUMNS = 'seq, hash, time, algorithm, key_spki_sha256, signature';

export function filterError(what: string): BrokerError {
  return new BrokerError('invalid', { code: 'store.filter', publicMessage: `invalid filter: ${what}` });
}

export function filterTime(date: Date, field: string): number {
  const ms = date instanceof Date ? date.getTime() : Number.NaN;
  if (!Number.isSafeInteger(ms)) throw filterError(`${field} is not a valid time`);
  return ms;
}

export function certificateFromRow(row: CertificateRow): CertificateRecord {
  return Object.freeze({
    serial: row.serial,
    spiffeId: row.spiffe_id,
    profile: row.profile as CertificateProfileName,
    notBefore: dateOf(row.not_before),
    notAfter: dateOf(row.not_after),
    issuedAt: dateOf(row.issued_at),
    sha256: row.sha256,
    spkiSha256: row.spki_sha256,
    issuerSerial: row.issuer_serial,
    renewedFrom: row.renewed_from,
    der: new Uint8Array(row.der),
    revokedAt: row.revoked_at === null ? null : dateOf(row.revoked_at),
    revocationReason: row.revocation_reason as StoredRevocationReason | null,
  });
}

export function rotationFromRow(row: RotationRow): RotationRecord {
  return Object.freeze({
    id: row.id,
    selector: row.selector,
    reason: row.reason as StoredRevocationReason,
    requestedBy: row.requested_by,
    requestedAt: dateOf(row.requested_at),
  });
}

export function rotationTargetFromRow(row: RotationTargetRow): RotationTargetRecord {
  return Object.freeze({
    rotationId: row.rotation_id,
    serial: row.serial,
    spiffeId: row.spiffe_id,
    notAfter: dateOf(row.not_after),
    connected: row.connected === true || row.connected === 1,
    status: row.status as RotationTargetStatus,
    newSerial: row.new_serial,
    finishedAt: row.finished_at === null ? null : dateOf(row.finished_at),
  });
}

export function joinTokenFromRow(row: JoinTokenRow): JoinTokenRecord {
  return Object.freeze({
    id: row.id,
    hash: row.hash,
    spiffeId: row.spiffe_id,
    createdBy: row.created_by,
    createdAt: dateOf(row.created_at),
    expiresAt: dateOf(row.expires_at),
    usedAt: row.used_at === null ? null : dateOf(row.used_at),
    usedForSerial: row.used_for_serial,
  });
}

export function auditEntryFromRow(row: AuditEntryRow): AuditEntry {
  const details = JSON.parse(row.details) as Record<string, AuditEntry['details'][string]>;
  for (const value of Object.values(details)) if (Array.isArray(value)) Object.freeze(value);
  return Object.freeze({
    seq: Number(row.seq),
    time: dateOf(row.time),
    requestId: row.request_id,
    actor: row.actor,
    action: row.action,
    outcome: row.outcome as AuditOutcome,
    subject: row.subject,
    reason: row.reason,
    details: Object.freeze(details),
    prevHash: row.prev_hash,
    hash: row.hash,
  });
}

export function checkpointFromRow(row: AuditCheckpointRow): AuditCheckpoint {
  return Object.freeze({
    seq: Number(row.seq),
    hash: row.hash,
    time: dateOf(row.time),
    algorithm: row.algorithm,
    keySpkiSha256: row.key_spki_sha256,
    signature: row.signature,
  });
}
