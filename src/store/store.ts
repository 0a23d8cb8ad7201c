/**
 * Persistence behind one interface: SQLite (embedded default, `sqlite-store.ts`) and, later,
 * PostgreSQL for several brokers. Every decision of the broker is one {@link Store.transaction}:
 * its state change and its audit entry commit together or not at all.
 *
 * The interface is asynchronous so that a networked store can implement it; the SQLite store
 * serialises transactions. Never sign on the HSM inside a transaction: sign first, then record.
 */
import type { RevocationReason } from '../core/index.js';
import type { AuditCheckpoint, AuditEntry } from './audit-records.js';

/** Why a certificate was revoked (RFC 5280 §5.3.1 names). */
export type StoredRevocationReason = RevocationReason;

/** The profile a certificate was issued under. */
export type CertificateProfileName = 'service' | 'operator' | 'server';

/** A certificate the broker issued. */
export interface CertificateRecord {
  /** Serial number, lowercase hex without leading zeros beyond DER's. Primary key. */
  readonly serial: string;
  readonly spiffeId: string;
  readonly profile: CertificateProfileName;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly issuedAt: Date;
  /** SHA-256 of the certificate's DER, hex. */
  readonly sha256: string;
  /** SHA-256 of the SubjectPublicKeyInfo, hex: renewals must bring a new key. */
  readonly spkiSha256: string;
  /** Serial of the intermediate that signed it. */
  readonly issuerSerial: string;
  /** The serial this certificate replaced (renewal), if any. */
  readonly renewedFrom: string | null;
  readonly der: Uint8Array;
  readonly revokedAt: Date | null;
  readonly revocationReason: StoredRevocationReason | null;
}

/** A join token, stored only as a hash. */
export interface JoinTokenRecord {
  /** Public id (safe to log and audit), e.g. 16 random bytes hex. */
  readonly id: string;
  /** SHA-256 of the secret token, hex. The token itself is never stored. */
  readonly hash: string;
  readonly spiffeId: string;
  /** SPIFFE ID of the operator who created it (or `bootstrap`). */
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly usedAt: Date | null;
  /** Serial of the certificate issued with it. */
  readonly usedForSerial: string | null;
}

/** Where one certificate of a forced rotation stands. */
export type RotationTargetStatus = 'pending' | 'rotated' | 'revoked';

/** A forced rotation (ForceRotate): which certificates must be replaced, and why. */
export interface RotationRecord {
  /** `rot-` and 32 hex digits. Primary key. */
  readonly id: string;
  /** The SPIFFE ID pattern asked for, or `*` for every certificate. */
  readonly selector: string;
  /** Revocation reason of the old serials. */
  readonly reason: StoredRevocationReason;
  /** SPIFFE ID of the operator. */
  readonly requestedBy: string;
  readonly requestedAt: Date;
}

/** One certificate a rotation targets. */
export interface RotationTargetRecord {
  readonly rotationId: string;
  /** The old certificate's serial. */
  readonly serial: string;
  readonly spiffeId: string;
  /** The old certificate's notAfter: past it, a pending target has expired unrenewed. */
  readonly notAfter: Date;
  /** Its holder had a Watch stream open when the rotation was asked. */
  readonly connected: boolean;
  readonly status: RotationTargetStatus;
  /** The renewal's serial (status rotated). */
  readonly newSerial: string | null;
  /** When the target left `pending` (the new certificate's issue time, or the revocation). */
  readonly finishedAt: Date | null;
}

/** Filters of {@link StoreTransaction.listCertificates}; all optional, combined with AND. */
export interface CertificateFilter {
  /** Exact SPIFFE ID, or a prefix ending in `/` (e.g. `spiffe://td/workers/`). */
  readonly spiffeId?: string;
  readonly profile?: CertificateProfileName;
  /**
   * Only certificates valid at this instant: notBefore ≤ validAt ≤ notAfter (inclusive, RFC 5280
   * §4.1.2.5) and not revoked at or before it.
   */
  readonly validAt?: Date;
  readonly revoked?: boolean;
}

/** One page of a listing, newest issued first; pass `nextPageToken` back for the next page. */
export interface Page<T> {
  readonly items: readonly T[];
  /** Empty when there is no further page. */
  readonly nextPageToken: string;
}

/** Filters of {@link StoreTransaction.queryAudit}. */
export interface AuditFilter {
  readonly actor?: string;
  readonly action?: string;
  readonly outcome?: AuditEntry['outcome'];
  /** Entries at or after this time. */
  readonly since?: Date;
  /** Entries before this time (exclusive). */
  readonly until?: Date;
  /** Entries whose subject (SPIFFE ID, serial or token id) equals this. */
  readonly subject?: string;
}

/**
 * What one transaction may read and change. Valid only while its transaction runs (later calls
 * fail with internal `store.tx_ended`). Listings take `pageSize` 0 (the default, 100) to 1,000
 * (larger is lowered to 1,000; negative is invalid `store.page_size`) and a `pageToken` from the
 * previous page of the same query ('' for the first; a malformed token or one from another
 * filter is invalid `store.page_token`). A record that breaks the store's rules (malformed
 * serial, hash or date) is internal `store.invalid_record`: callers validate input before.
 */
export interface StoreTransaction {
  /** @throws BrokerError conflict `store.certificate_exists` for a serial (or DER) already recorded */
  insertCertificate(record: CertificateRecord): Promise<void>;
  getCertificate(serial: string): Promise<CertificateRecord | null>;
  /**
   * Marks a certificate revoked.
   * @returns false if it does not exist or was already revoked (the first revocation stands)
   */
  revokeCertificate(serial: string, revokedAt: Date, reason: StoredRevocationReason): Promise<boolean>;
  listCertificates(filter: CertificateFilter, pageSize: number, pageToken: string): Promise<Page<CertificateRecord>>;
  /** Every revoked certificate not yet expired at `at` (for the CRL and the revocation cache). */
  listRevokedUnexpired(at: Date): Promise<readonly CertificateRecord[]>;

  /** @throws BrokerError conflict `store.join_token_exists` for an id or hash already stored */
  insertJoinToken(record: JoinTokenRecord): Promise<void>;
  getJoinTokenByHash(hash: string): Promise<JoinTokenRecord | null>;
  /**
   * Marks an unused token used, atomically.
   * @returns false if it was already used (exactly one caller ever gets true)
   */
  redeemJoinToken(id: string, usedAt: Date, serial: string): Promise<boolean>;
  /** Unused, unexpired join tokens at `at`. */
  countOutstandingJoinTokens(at: Date): Promise<number>;

  /**
   * Inserts an entry the audit module chained (src/audit computes seq, prevHash and hash from
   * {@link lastAuditEntry} in the same transaction).
   * @throws BrokerError conflict `store.audit_seq` if the seq is taken (another writer won);
   *   conflict `store.audit_chain` if prevHash is not the head's hash; internal `store.audit_gap`
   *   if seq is not head + 1
   */
  insertAuditEntry(entry: AuditEntry): Promise<void>;
  queryAudit(filter: AuditFilter, pageSize: number, pageToken: string): Promise<Page<AuditEntry>>;
  /** The newest audit entry, or null for an empty log. */
  lastAuditEntry(): Promise<AuditEntry | null>;
  /**
   * @throws BrokerError conflict `store.audit_checkpoint` unless the checkpoint's seq is an
   *   existing entry with that hash, after the last checkpoint's seq
   */
  insertAuditCheckpoint(checkpoint: AuditCheckpoint): Promise<void>;
  lastAuditCheckpoint(): Promise<AuditCheckpoint | null>;

  /** Next value of a named monotonic counter (e.g. `crl_number`), starting at 1. */
  nextCounter(name: string): Promise<bigint>;

  /** @throws BrokerError conflict `store.rotation_exists` for an id already stored */
  insertRotation(record: RotationRecord): Promise<void>;
  getRotation(id: string): Promise<RotationRecord | null>;
  /**
   * @throws BrokerError conflict `store.rotation_target_exists` for a (rotation, serial) pair
   *   already stored; internal `store.invalid_record` for a rotation that does not exist
   */
  insertRotationTarget(target: RotationTargetRecord): Promise<void>;
  /** Every target of a rotation, by serial. */
  listRotationTargets(rotationId: string): Promise<readonly RotationTargetRecord[]>;
  /** Pending targets whose old serial is `serial`, across rotations. */
  pendingRotationTargets(serial: string): Promise<readonly RotationTargetRecord[]>;
  /**
   * Moves a pending target to rotated (with the new serial) or revoked, once.
   * @returns false if it is not pending (already finished) or does not exist
   */
  finishRotationTarget(rotationId: string, serial: string, status: 'rotated' | 'revoked', newSerial: string | null, at: Date): Promise<boolean>;
}

/** A store of certificates, join tokens and the audit log. */
export interface Store {
  /**
   * Runs `work` in one transaction: committed if it resolves, rolled back if it throws (the
   * error reaches the caller unchanged). Transactions never interleave their effects. Calling
   * `transaction` from inside `work` is refused (internal `store.nested_transaction`).
   * @throws BrokerError unavailable `store.closed` after close; `store.busy` / `store.io` (retry)
   */
  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T>;
  /** Closes the store; later calls fail. */
  close(): Promise<void>;
}
