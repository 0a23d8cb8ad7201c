/**
 * The audit hash chain and the message a checkpoint signs.
 *
 * ## Entry hash, format `credbroker-audit-v1`
 *
 * `hash` is the lowercase hex SHA-256 of the UTF-8 bytes of
 *
 * ```text
 * "credbroker-audit-v1\n" + JSON.stringify([seq, prevHash, timeMs, requestId, actor, action, outcome, subject, reason, details])
 * ```
 *
 * - the array fixes the field order; `seq` and `timeMs` (milliseconds since the epoch, UTC) are
 *   integers, the other fields strings, `prevHash` the previous entry's `hash` (64 zeros,
 *   {@link GENESIS_HASH}, for seq 1);
 * - `details` is an object whose keys are identifiers (`[A-Za-z][A-Za-z0-9_.-]{0,63}`) written in
 *   ascending UTF-16 code unit order, and whose values are strings, finite numbers, booleans or
 *   arrays of strings (array order is kept). For these values the text is exactly the JSON
 *   Canonicalization Scheme (RFC 8785), so a verifier in another language can rebuild the bytes
 *   with a JCS library;
 * - strings must be well-formed Unicode (no lone surrogates), so they survive UTF-8 storage.
 *
 * Because each entry's preimage contains the previous hash, changing, removing or reordering any
 * entry changes every later hash: a verifier names the first entry that does not fit.
 *
 * ## Checkpoint message, format `credbroker-audit-checkpoint-v1`
 *
 * A checkpoint says "the chain up to `seq` has head hash `hash`", signed by the HSM audit key
 * over the UTF-8 bytes of `"credbroker-audit-checkpoint-v1\n<seq>\n<hash>\n<timeMs>"` (decimal
 * integers, no trailing newline). The distinct prefix keeps a checkpoint signature from ever
 * standing for anything else.
 */
import { createHash } from 'node:crypto';
import { BrokerError } from '../core/index.js';
import { AUDIT_GENESIS_HASH, AUDIT_OUTCOMES, type AuditEntry, type AuditEntryInput } from '../store/index.js';

/** Domain prefix (first line) of every entry's hash preimage. */
export const AUDIT_HASH_FORMAT = 'credbroker-audit-v1';
/** Domain prefix (first line) of every checkpoint message. */
export const AUDIT_CHECKPOINT_FORMAT = 'credbroker-audit-checkpoint-v1';
/** The `prevHash` of entry 1: 64 zeros. */
export const GENESIS_HASH = AUDIT_GENESIS_HASH;

/** Most keys in one entry's details. */
export const MAX_DETAIL_KEYS = 64;
/** Longest string anywhere in an entry (field, detail value or array element), in characters. */
export const MAX_AUDIT_STRING_LENGTH = 2_048;
/** Most elements of one detail array. */
export const MAX_DETAIL_ARRAY_LENGTH = 256;

const HEX_SHA256 = /^[0-9a-f]{64}$/;
/** Detail keys: identifiers, so no key is integer-like (JS would reorder it) or `__proto__`. */
const DETAIL_KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const LONE_SURROGATE = /\p{Cs}/u;

/** An entry without its hash: what {@link hashAuditEntry} covers. */
export type UnhashedAuditEntry = Omit<AuditEntry, 'hash'>;

function invalid(what: string): BrokerError {
  return new BrokerError('internal', { code: 'audit.invalid_entry', publicMessage: 'internal error', logMessage: `audit: refusing an entry: ${what}` });
}

function checkString(value: unknown, field: string, allowEmpty: boolean): void {
  if (typeof value !== 'string') throw invalid(`${field} is not a string`);
  if (!allowEmpty && value === '') throw invalid(`${field} is empty`);
  if (value.length > MAX_AUDIT_STRING_LENGTH) throw invalid(`${field} is longer than ${MAX_AUDIT_STRING_LENGTH} characters`);
  if (LONE_SURROGATE.test(value)) throw invalid(`${field} is not well-formed Unicode`);
}

/**
 * The details in canonical form: a new object with sorted keys, every value checked, arrays
 * copied; frozen.
 * @throws BrokerError internal `audit.invalid_entry` naming the offending key
 */
export function canonicalDetails(details: AuditEntryInput['details']): AuditEntryInput['details'] {
  const given: unknown = details;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw invalid('details is not an object');
  const keys = Object.keys(details).sort();
  if (keys.length > MAX_DETAIL_KEYS) throw invalid(`details has more than ${MAX_DETAIL_KEYS} keys`);
  const out: Record<string, string | number | boolean | readonly string[]> = {};
  for (const key of keys) {
    if (!DETAIL_KEY.test(key)) throw invalid(`details key "${key.slice(0, 64)}" is not an identifier ([A-Za-z][A-Za-z0-9_.-]{0,63})`);
    const value: unknown = details[key];
    if (typeof value === 'string') {
      checkString(value, `details.${key}`, true);
      out[key] = value;
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw invalid(`details.${key} is not a finite number`);
      out[key] = value;
    } else if (typeof value === 'boolean') {
      out[key] = value;
    } else if (Array.isArray(value)) {
      if (value.length > MAX_DETAIL_ARRAY_LENGTH) throw invalid(`details.${key} has more than ${MAX_DETAIL_ARRAY_LENGTH} elements`);
      const items = (value as unknown[]).map((item, index) => {
        checkString(item, `details.${key}[${index}]`, true);
        return item as string;
      });
      out[key] = Object.freeze(items);
    } else {
      throw invalid(`details.${key} must be a string, number, boolean or array of strings`);
    }
  }
  return Object.freeze(out);
}

/**
 * The hash of an entry (see the module comment for the exact bytes).
 * @throws BrokerError internal `audit.invalid_entry` if a field is malformed
 */
export function hashAuditEntry(entry: UnhashedAuditEntry): string {
  return createHash('sha256').update(hashPreimage(entry), 'utf8').digest('hex');
}

/**
 * The exact text hashed for an entry: {@link AUDIT_HASH_FORMAT}, a newline, then the JSON array.
 * @throws BrokerError internal `audit.invalid_entry` if a field is malformed
 */
export function hashPreimage(entry: UnhashedAuditEntry): string {
  if (!Number.isSafeInteger(entry.seq) || entry.seq < 1) throw invalid('seq is not a positive integer');
  if (typeof entry.prevHash !== 'string' || !HEX_SHA256.test(entry.prevHash)) throw invalid('prevHash is not a lowercase hex SHA-256');
  const timeMs = entry.time instanceof Date ? entry.time.getTime() : Number.NaN;
  if (!Number.isSafeInteger(timeMs)) throw invalid('time is not a valid date');
  checkString(entry.requestId, 'requestId', false);
  checkString(entry.actor, 'actor', false);
  checkString(entry.action, 'action', false);
  if (!AUDIT_OUTCOMES.includes(entry.outcome)) throw invalid(`outcome "${entry.outcome}" is not allowed, denied or failed`);
  checkString(entry.subject, 'subject', true);
  checkString(entry.reason, 'reason', true);
  const details = canonicalDetails(entry.details);
  // Written out rather than left to JSON.stringify's key order: the bytes are the format.
  const detailsText = `{${Object.keys(details)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${JSON.stringify(details[key])}`)
    .join(',')}}`;
  const fields = [entry.seq, entry.prevHash, timeMs, entry.requestId, entry.actor, entry.action, entry.outcome, entry.subject, entry.reason];
  return `${AUDIT_HASH_FORMAT}\n[${fields.map((field) => JSON.stringify(field)).join(',')},${detailsText}]`;
}

/**
 * Chains `input` after `previous` (null for the first entry of the log): seq is previous.seq + 1
 * (or 1), prevHash is previous.hash (or {@link GENESIS_HASH}), hash covers both and the input.
 * The result is a new, deeply frozen object with canonical details.
 * @throws BrokerError internal `audit.invalid_entry` for a malformed input or previous entry
 */
export function chainEntry(previous: AuditEntry | null, input: AuditEntryInput): AuditEntry {
  if (previous !== null) {
    if (!Number.isSafeInteger(previous.seq) || previous.seq < 1) throw invalid('the previous entry has no valid seq');
    if (typeof previous.hash !== 'string' || !HEX_SHA256.test(previous.hash)) throw invalid('the previous entry has no valid hash');
  }
  const unhashed: UnhashedAuditEntry = {
    seq: previous === null ? 1 : previous.seq + 1,
    prevHash: previous === null ? GENESIS_HASH : previous.hash,
    time: new Date(input.time instanceof Date ? input.time.getTime() : Number.NaN),
    requestId: input.requestId,
    actor: input.actor,
    action: input.action,
    outcome: input.outcome,
    subject: input.subject,
    reason: input.reason,
    details: canonicalDetails(input.details),
  };
  return Object.freeze({ ...unhashed, hash: hashAuditEntry(unhashed) });
}

/**
 * The bytes a checkpoint signs: `"credbroker-audit-checkpoint-v1\n<seq>\n<hash>\n<timeMs>"`.
 * @throws BrokerError internal `audit.invalid_entry` for a malformed seq, hash or time
 */
export function checkpointMessage(seq: number, hash: string, time: Date): Uint8Array {
  if (!Number.isSafeInteger(seq) || seq < 1) throw invalid('checkpoint seq is not a positive integer');
  if (typeof hash !== 'string' || !HEX_SHA256.test(hash)) throw invalid('checkpoint hash is not a lowercase hex SHA-256');
  const timeMs = time instanceof Date ? time.getTime() : Number.NaN;
  if (!Number.isSafeInteger(timeMs)) throw invalid('checkpoint time is not a valid date');
  return new Uint8Array(Buffer.from(`${AUDIT_CHECKPOINT_FORMAT}\n${seq}\n${hash}\n${timeMs}`, 'utf8'));
}
