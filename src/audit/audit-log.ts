/**
 * Appending to the audit log inside the caller's transaction, so a decision and its entry
 * commit together or not at all (DESIGN.md invariant 8).
 *
 * Entries hold identities, serials, token ids, outcomes and reasons, never raw join tokens,
 * PINs, keys or CSRs (invariant 7). {@link AuditLog.append} refuses details whose key or value
 * looks like a secret: a guard against a mistake in the caller, not a substitute for care.
 */
import { BrokerError } from '../core/index.js';
import type { AuditEntry, AuditEntryInput, StoreTransaction } from '../store/index.js';
import { chainEntry } from './audit-chain.js';

/** A key is refused when any of its words is one of these. */
const SECRET_WORDS: ReadonlySet<string> = new Set(['password', 'passwd', 'passphrase', 'secret', 'private', 'credential', 'credentials']);
/**
 * A key is refused when its last word is one of these (`joinToken`, `pin`, `privateKey`, `csr`),
 * while `tokenId`, `keyLabel` or `csrSha256` pass: ids, labels and fingerprints are what an entry
 * should hold instead.
 */
const SECRET_LAST_WORDS: ReadonlySet<string> = new Set([
  'token',
  'jwt',
  'jws',
  'pin',
  'key',
  'csr',
  'pem',
  'der',
  'share',
  'seed',
  'cookie',
  'authorization',
  'bearer',
]);

/** Values that are secrets or blobs whatever their key. */
const SECRET_VALUES: readonly { readonly pattern: RegExp; readonly what: string }[] = [
  { pattern: /-----BEGIN [A-Z0-9 ]+-----/, what: 'a PEM block' },
  { pattern: /\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/, what: 'a JWS/JWT' },
  { pattern: /\bcbjt1-[0-9a-f]{32}-/, what: 'a join token' },
];

/** The words of a key: `joinToken`, `join_token`, `join-token` and `join.token` give join, token. */
function wordsOf(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .split(/[\s_.-]+/)
    .filter((word) => word !== '')
    .map((word) => word.toLowerCase());
}

/**
 * Why an entry looks like it carries a secret, or null. Checks every details key (by its words)
 * and every string in the entry (PEM blocks, JWS, join tokens). The reason names the field, never
 * the value.
 */
export function secretLikeContent(input: AuditEntryInput): string | null {
  // Malformed details are chainEntry's to refuse, with its own message.
  const details: AuditEntryInput['details'] = typeof input.details === 'object' && (input.details as unknown) !== null ? input.details : {};
  for (const [key, value] of Object.entries(details)) {
    const words = wordsOf(key);
    const last = words.at(-1);
    if (words.some((word) => SECRET_WORDS.has(word)) || (last !== undefined && SECRET_LAST_WORDS.has(last))) {
      return `details key "${key}" names a secret; record an id, label or fingerprint instead`;
    }
    const texts = typeof value === 'string' ? [value] : Array.isArray(value) ? (value as readonly string[]) : [];
    for (const text of texts) {
      const match = SECRET_VALUES.find(({ pattern }) => pattern.test(text));
      if (match !== undefined) return `details.${key} holds ${match.what}`;
    }
  }
  for (const field of ['requestId', 'actor', 'action', 'subject', 'reason'] as const) {
    const text = input[field];
    const match = typeof text === 'string' ? SECRET_VALUES.find(({ pattern }) => pattern.test(text)) : undefined;
    if (match !== undefined) return `${field} holds ${match.what}`;
  }
  return null;
}

/** Appends entries to the hash-chained audit log. Stateless: the chain's head is in the store. */
export class AuditLog {
  /**
   * Chains `input` after the store's last entry and inserts it, all inside `tx` (the caller's
   * transaction, which also holds the decision's state change). Never sign inside it.
   * @returns the entry as stored (seq, prevHash, hash set; frozen)
   * @throws BrokerError internal `audit.secret_in_details` when the input looks like it carries a
   *   secret (the log message names the field, not the value); internal `audit.invalid_entry` for a
   *   malformed input; conflict `store.audit_seq` / `store.audit_chain` if another writer appended
   *   first (retry the transaction)
   */
  async append(tx: StoreTransaction, input: AuditEntryInput): Promise<AuditEntry> {
    const secret = secretLikeContent(input);
    if (secret !== null) {
      throw new BrokerError('internal', {
        code: 'audit.secret_in_details',
        publicMessage: 'internal error',
        logMessage: `audit: refusing an entry for ${input.action}: ${secret}`,
      });
    }
    const entry = chainEntry(await tx.lastAuditEntry(), input);
    await tx.insertAuditEntry(entry);
    return entry;
  }
}
