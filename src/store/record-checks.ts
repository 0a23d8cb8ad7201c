/**
 * The last guard before a record is written: every Store implementation checks records with
 * these functions. Callers (server, audit) validate user input long before; a record failing
 * here is a bug in the caller, so the errors are `internal` and name the field.
 */
import { REVOCATION_REASONS } from '../core/index.js';
import { BrokerError } from '../core/index.js';
import type { AuditCheckpoint, AuditEntry, AuditOutcome } from './audit-records.js';
import type { CertificateProfileName, CertificateRecord, JoinTokenRecord, RotationRecord, RotationTargetRecord, RotationTargetStatus, StoredRevocationReason } from './store.js';

/** Every profile name a certificate may carry. */
export const CERTIFICATE_PROFILE_NAMES: readonly CertificateProfileName[] = Object.freeze(['service', 'operator', 'server']);

/** Every revocation reason (RFC 5280 §5.3.1 names). */
export const STORED_REVOCATION_REASONS: readonly StoredRevocationReason[] = REVOCATION_REASONS;

/** Every audit outcome. */
export const AUDIT_OUTCOMES: readonly AuditOutcome[] = Object.freeze(['allowed', 'denied', 'failed']);

/** The `prevHash` of the first audit entry: 64 zeros. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

const HEX_SERIAL = /^[0-9a-f]{1,64}$/;
const HEX_SHA256 = /^[0-9a-f]{64}$/;
const COUNTER_NAME = /^[a-z][a-z0-9_.-]{0,63}$/;
/** Longest text field the store accepts (ids, SPIFFE IDs, actions, reasons), in characters. */
const MAX_TEXT_LENGTH = 2_048;

function bad(what: string): BrokerError {
  return new BrokerError('internal', { code: 'store.invalid_record', publicMessage: 'internal error', logMessage: `store: refusing a record: ${what}` });
}

/**
 * Milliseconds since the epoch of a valid Date.
 * @throws BrokerError internal `store.invalid_record` naming `field`
 */
export function timeMs(date: Date, field: string): number {
  const ms = date instanceof Date ? date.getTime() : Number.NaN;
  if (!Number.isSafeInteger(ms)) throw bad(`${field} is not a valid date`);
  return ms;
}

function text(value: string, field: string, options: { empty?: boolean; pattern?: RegExp } = {}): void {
  if (typeof value !== 'string') throw bad(`${field} is not a string`);
  if (value === '' && options.empty !== true) throw bad(`${field} is empty`);
  if (value.length > MAX_TEXT_LENGTH) throw bad(`${field} is longer than ${MAX_TEXT_LENGTH} characters`);
  // A lone surrogate cannot round-trip through UTF-8 storage: the value read back would differ.
  if (/\p{Cs}/u.test(value)) throw bad(`${field} is not well-formed Unicode`);
  if (options.pattern !== undefined && !options.pattern.test(value)) throw bad(`${field} has the wrong form`);
}

/** @throws BrokerError internal `store.invalid_record` */
export function checkSerial(serial: string, field = 'serial'): void {
  text(serial, field, { pattern: HEX_SERIAL });
}

/** @throws BrokerError internal `store.invalid_record` */
export function checkCertificateRecord(record: CertificateRecord): void {
  checkSerial(record.serial);
  text(record.spiffeId, 'spiffeId', { pattern: /^spiffe:\/\/[^/]+/ });
  if (!CERTIFICATE_PROFILE_NAMES.includes(record.profile)) throw bad(`profile "${record.profile}" is unknown`);
  if (timeMs(record.notAfter, 'notAfter') < timeMs(record.notBefore, 'notBefore')) throw bad('notAfter is before notBefore');
  timeMs(record.issuedAt, 'issuedAt');
  text(record.sha256, 'sha256', { pattern: HEX_SHA256 });
  text(record.spkiSha256, 'spkiSha256', { pattern: HEX_SHA256 });
  checkSerial(record.issuerSerial, 'issuerSerial');
  if (record.renewedFrom !== null) checkSerial(record.renewedFrom, 'renewedFrom');
  if (!(record.der instanceof Uint8Array) || record.der.length === 0) throw bad('der is empty');
  if ((record.revokedAt === null) !== (record.revocationReason === null)) throw bad('revokedAt and revocationReason must be set together');
  if (record.revokedAt !== null) timeMs(record.revokedAt, 'revokedAt');
  if (record.revocationReason !== null) checkRevocationReason(record.revocationReason);
}

/** @throws BrokerError internal `store.invalid_record` */
export function checkRevocationReason(reason: StoredRevocationReason): void {
  if (!STORED_REVOCATION_REASONS.includes(reason)) throw bad(`revocation reason "${reason}" is unknown`);
}

/** @throws BrokerError internal `store.invalid_record` */
export function checkJoinTokenRecord(record: JoinTokenRecord): void {
  text(record.id, 'id');
  text(record.hash, 'hash', { pattern: HEX_SHA256 });
  text(record.spiffeId, 'spiffeId', { pattern: /^spiffe:\/\/[^/]+/ });
  text(record.createdBy, 'createdBy');
  if (timeMs(record.expiresAt, 'expiresAt') <= timeMs(record.createdAt, 'createdAt')) throw bad('expiresAt is not after createdAt');
  if ((record.usedAt === null) !== (record.usedForSerial === null)) throw bad('usedAt and usedForSerial must be set together');
  if (record.usedAt !== null) timeMs(record.usedAt, 'usedAt');
  if (record.usedForSerial !== null) checkSerial(record.usedForSerial, 'usedForSerial');
}

/** @throws BrokerError internal `store.invalid_record` */
export function checkAuditEntry(entry: AuditEntry): void {
  if (!Number.isSafeInteger(entry.seq) || entry.seq < 1) throw bad('seq is not a positive integer');
  timeMs(entry.time, 'time');
  text(entry.requestId, 'requestId');
  text(entry.actor, 'actor');
  text(entry.action, 'action');
  if (!AUDIT_OUTCOMES.includes(entry.outcome)) throw bad(`outcome "${entry.outcome}" is unknown`);
  text(entry.subject, 'subject', { empty: true });
  text(entry.reason, 'reason', { empty: true });
  const details: unknown = entry.details;
  if (typeof details !== 'object' || details === null || Array.isArray(details)) throw bad('details is not an object');
  text(entry.prevHash, 'prevHash', { pattern: HEX_SHA256 });
  text(entry.hash, 'hash', { pattern: HEX_SHA256 });
}

/** @throws BrokerError internal `store.invalid_record` */
export function checkAuditCheckpoint(checkpoint: AuditCheckpoint): void {
  if (!Number.isSafeInteger(checkpoint.seq) || checkpoint.seq < 1) throw bad('checkpoint seq is not a positive integer');
  text(checkpoint.hash, 'hash', { pattern: HEX_SHA256 });
  timeMs(checkpoint.time, 'time');
  text(checkpoint.algorithm, 'algorithm');
  text(checkpoint.keySpkiSha256, 'keySpkiSha256', { pattern: HEX_SHA256 });
  text(checkpoint.signature, 'signature', { pattern: /^[A-Za-z0-9+/]+={0,2}$/ });
}

/** @throws BrokerError internal `store.invalid_record` */
export function checkCounterName(name: string): void {
  text(name, 'counter name', { pattern: COUNTER_NAME });
}

/**
 * JSON of audit details with keys in ascending UTF-16 code unit order (written out, since
 * JavaScript puts integer-like keys first whatever the insertion order), so equal details are
 * stored as equal text.
 */
export function detailsJson(details: AuditEntry['details']): string {
  const members = Object.keys(details)
    .sort()
    .filter((key) => details[key] !== undefined)
    .map((key) => `${JSON.stringify(key)}:${JSON.stringify(details[key])}`);
  return `{${members.join(',')}}`;
}

/** Every status a rotation target may have. */
export const ROTATION_TARGET_STATUSES: readonly RotationTargetStatus[] = Object.freeze(['pending', 'rotated', 'revoked']);

const ROTATION_ID = /^rot-[0-9a-f]{32}$/;

/** @throws BrokerError internal `store.invalid_record` */
export function checkRotationId(id: string): void {
  text(id, 'rotation id', { pattern: ROTATION_ID });
}

/** @throws BrokerError internal `store.invalid_record` */
export function checkRotationRecord(record: RotationRecord): void {
  checkRotationId(record.id);
  text(record.selector, 'selector');
  checkRevocationReason(record.reason);
  text(record.requestedBy, 'requestedBy');
  timeMs(record.requestedAt, 'requestedAt');
}

/** @throws BrokerError internal `store.invalid_record` */
export function checkRotationTargetRecord(target: RotationTargetRecord): void {
  checkRotationId(target.rotationId);
  checkSerial(target.serial);
  text(target.spiffeId, 'spiffeId', { pattern: /^spiffe:\/\/[^/]+/ });
  timeMs(target.notAfter, 'notAfter');
  if (typeof target.connected !== 'boolean') throw bad('connected is not a boolean');
  if (!ROTATION_TARGET_STATUSES.includes(target.status)) throw bad(`status "${target.status}" is unknown`);
  if ((target.status === 'pending') !== (target.finishedAt === null)) throw bad('finishedAt must be set exactly when the target is no longer pending');
  if (target.finishedAt !== null) timeMs(target.finishedAt, 'finishedAt');
  if ((target.status === 'rotated') !== (target.newSerial !== null)) throw bad('newSerial must be set exactly when the target is rotated');
  if (target.newSerial !== null) checkSerial(target.newSerial, 'newSerial');
}
