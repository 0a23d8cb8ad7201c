/**
 * The audit log's records, as the store keeps them (src/audit chains, signs and verifies them). Every decision, allowed or denied, is one entry in a hash chain;
 * entries hold identities, serials, token ids, outcome and reason — never raw join tokens, PINs,
 * keys, CSR free-text or personal data (DESIGN.md invariant 7).
 */

/** What happened to a request. */
export type AuditOutcome = 'allowed' | 'denied' | 'failed';

/** An entry before it is chained. */
export interface AuditEntryInput {
  readonly time: Date;
  /** Request id (also in the gRPC reply), to tie log lines and replies to the entry. */
  readonly requestId: string;
  /** Who asked: the peer's SPIFFE ID, `anonymous` (enrollment), or `local` (bootstrap command). */
  readonly actor: string;
  /** What was asked, e.g. `Enroll`, `Renew`, `Revoke`, `CreateJoinToken`. */
  readonly action: string;
  readonly outcome: AuditOutcome;
  /** The object acted on: a SPIFFE ID, a serial, a join token id; '' when none. */
  readonly subject: string;
  /** Error code for denials and failures (e.g. `join_token.used`); '' when allowed. */
  readonly reason: string;
  /** Further facts: serials, TTLs, SANs, token ids. Strings, numbers, booleans, arrays of them. */
  readonly details: Readonly<Record<string, string | number | boolean | readonly string[]>>;
}

/** An entry in the chain. */
export interface AuditEntry extends AuditEntryInput {
  /** 1, 2, 3, … without gaps. */
  readonly seq: number;
  /** Hash of the previous entry (64 zeros for the first), hex. */
  readonly prevHash: string;
  /** SHA-256 over prevHash and the canonical form of this entry, hex. */
  readonly hash: string;
}

/** A signed statement "the chain up to seq has head hash H", made with the HSM audit key. */
export interface AuditCheckpoint {
  readonly seq: number;
  readonly hash: string;
  readonly time: Date;
  /** Signature algorithm (JOSE name) and key. */
  readonly algorithm: string;
  /** SHA-256 of the audit key's SPKI, hex. */
  readonly keySpkiSha256: string;
  /** Base64 signature over the checkpoint message (see audit-chain.ts). */
  readonly signature: string;
}
