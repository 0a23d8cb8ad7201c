/**
 * Offline verification of the audit log: every hash recomputed, seq continuity, prev links,
 * every checkpoint's hash against the chain and its signature against a pinned audit key.
 * Stops at the first problem in seq order and names that entry.
 *
 * What it proves: without a key, that the log is internally consistent (someone with write access
 * could still have rewritten it and recomputed every hash). With the audit public key, that every
 * entry up to the last checkpoint is exactly what the broker wrote, and that the log was not cut
 * back before that checkpoint. Entries after the last checkpoint are covered by the chain only.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { spkiOf, verifySignature, type SignatureAlgorithm } from '../core/index.js';
import { SqliteStore, type AuditCheckpoint, type AuditEntry } from '../store/index.js';
import { GENESIS_HASH, checkpointMessage, hashAuditEntry } from './audit-chain.js';

/** Options of {@link verifyAuditLog}. */
export interface AuditVerifyOptions {
  /**
   * The audit key's public half, pinned by the verifier (from the ceremony's records). Without it
   * checkpoint signatures are not checked, and the result says so.
   */
  readonly publicKey?: KeyObject;
}

/** The outcome of {@link verifyAuditLog}. */
export interface AuditVerification {
  /** True when no problem was found (see {@link signaturesChecked}). */
  readonly ok: boolean;
  /** Entries read (up to and including the first bad one). */
  readonly entries: number;
  /** Checkpoints found consistent with the chain (and, with a key, correctly signed). */
  readonly checkpoints: number;
  /** True when checkpoint signatures were checked against a pinned key. */
  readonly signaturesChecked: boolean;
  /** Seq of the last good entry (0 for an empty log). */
  readonly headSeq: number;
  /** Seq of the first entry that does not fit, when not ok. */
  readonly firstBadSeq?: number;
  /** What is wrong with it, when not ok. */
  readonly reason?: string;
  /** The last good checkpoint. */
  readonly lastCheckpointSeq?: number;
  readonly lastCheckpointTime?: Date;
  /** SHA-256 of the pinned key's SPKI, hex, when one was given. */
  readonly keySpkiSha256?: string;
}

const ALGORITHMS: ReadonlySet<string> = new Set<SignatureAlgorithm>(['ES256', 'ES384', 'RS256', 'EdDSA']);
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const short = (hash: string): string => `${hash.slice(0, 16)}…`;

/**
 * Verifies entries (in seq order, read once, lazily) against checkpoints (in seq order).
 * Never throws for bad data: the result names the first bad seq and why.
 */
export function verifyAuditLog(entries: Iterable<AuditEntry>, checkpoints: readonly AuditCheckpoint[], options: AuditVerifyOptions = {}): AuditVerification {
  const publicKey = options.publicKey;
  const keySpkiSha256 = publicKey === undefined ? undefined : createHash('sha256').update(spkiOf(publicKey)).digest('hex');
  let count = 0;
  let headSeq = 0;
  let prevHash = GENESIS_HASH;
  let checked = 0;
  let lastCheckpoint: AuditCheckpoint | undefined;
  let next = 0;

  const result = (bad?: { seq: number; reason: string }): AuditVerification => ({
    ok: bad === undefined,
    entries: count,
    checkpoints: checked,
    signaturesChecked: publicKey !== undefined,
    headSeq,
    ...(bad === undefined ? {} : { firstBadSeq: bad.seq, reason: bad.reason }),
    ...(lastCheckpoint === undefined ? {} : { lastCheckpointSeq: lastCheckpoint.seq, lastCheckpointTime: lastCheckpoint.time }),
    ...(keySpkiSha256 === undefined ? {} : { keySpkiSha256 }),
  });

  const iterator = entries[Symbol.iterator]();
  let exhausted = false;
  try {
    for (;;) {
      let step: IteratorResult<AuditEntry>;
      try {
        step = iterator.next();
      } catch (error) {
        // A row that cannot even be read (e.g. details that are not JSON) is a bad entry too.
        return result({ seq: headSeq + 1, reason: `entry ${headSeq + 1} cannot be read (${error instanceof Error ? error.message : String(error)})` });
      }
      if (step.done === true) {
        exhausted = true;
        break;
      }
      const entry = step.value;
      count++;
      const expected = headSeq + 1;
      if (entry.seq !== expected) {
        return result({ seq: expected, reason: `expected entry ${expected}, found seq ${String(entry.seq)}: entries are missing, duplicated or out of order` });
      }
      if (entry.prevHash !== prevHash) {
        const reason = expected === 1 ? 'prev_hash of the first entry is not the genesis hash' : `prev_hash does not match the hash of entry ${expected - 1}: an entry was removed, reordered or rewritten`;
        return result({ seq: expected, reason });
      }
      let hash: string;
      try {
        hash = hashAuditEntry(entry);
      } catch (error) {
        return result({ seq: expected, reason: `the entry is malformed (${error instanceof Error ? error.message : String(error)})` });
      }
      if (hash !== entry.hash) return result({ seq: expected, reason: 'the hash does not match the content: the entry was changed' });

      for (let checkpoint = checkpoints[next]; checkpoint !== undefined && checkpoint.seq <= expected; checkpoint = checkpoints[next]) {
        if (checkpoint.seq !== expected) {
          return result({ seq: expected, reason: `checkpoint at seq ${String(checkpoint.seq)} is out of order` });
        }
        const problem = checkpointProblem(checkpoint, entry, publicKey, keySpkiSha256);
        if (problem !== null) return result({ seq: expected, reason: problem });
        lastCheckpoint = checkpoint;
        checked++;
        next++;
      }
      headSeq = expected;
      prevHash = entry.hash;
    }
  } finally {
    // Stopped early: let the source release what it holds (a database cursor).
    if (!exhausted) iterator.return?.();
  }
  const dangling = checkpoints[next];
  if (dangling !== undefined) {
    return result({
      seq: headSeq + 1,
      reason: `the log ends at entry ${headSeq} but a checkpoint covers seq ${String(dangling.seq)}: entries ${headSeq + 1}..${String(dangling.seq)} were removed`,
    });
  }
  return result();
}

function checkpointProblem(checkpoint: AuditCheckpoint, entry: AuditEntry, publicKey: KeyObject | undefined, keySpkiSha256: string | undefined): string | null {
  if (checkpoint.hash !== entry.hash) {
    return `the checkpoint at seq ${entry.seq} signs head hash ${short(checkpoint.hash)} but the chain has ${short(entry.hash)}: entries up to ${entry.seq} were rewritten or the checkpoint was changed`;
  }
  if (publicKey === undefined || keySpkiSha256 === undefined) return null;
  if (checkpoint.keySpkiSha256 !== keySpkiSha256) {
    return `the checkpoint at seq ${entry.seq} was signed by another key (spki sha256 ${short(checkpoint.keySpkiSha256)}, expected ${short(keySpkiSha256)})`;
  }
  if (!ALGORITHMS.has(checkpoint.algorithm) || !BASE64.test(checkpoint.signature)) {
    return `the checkpoint at seq ${entry.seq} has a malformed algorithm or signature`;
  }
  let message: Uint8Array;
  try {
    message = checkpointMessage(checkpoint.seq, checkpoint.hash, checkpoint.time);
  } catch {
    return `the checkpoint at seq ${entry.seq} is malformed`;
  }
  const signature = Buffer.from(checkpoint.signature, 'base64');
  if (!verifySignature(checkpoint.algorithm as SignatureAlgorithm, publicKey, message, signature)) {
    return `the signature of the checkpoint at seq ${entry.seq} does not verify with the audit key`;
  }
  return null;
}

/** The audit log of a SQLite database file, read in one read-only snapshot. */
export interface AuditLogSnapshot {
  /** Every entry in seq order, read lazily; iterate once. */
  readonly entries: Iterable<AuditEntry>;
  /** Every checkpoint in seq order. */
  readonly checkpoints: readonly AuditCheckpoint[];
  /** Ends the snapshot and closes the database. */
  close(): Promise<void>;
}

/**
 * Opens a broker's SQLite database read-only (it may be in use by a running broker: WAL readers
 * do not block it) and returns its audit log as one consistent snapshot.
 * @throws BrokerError from {@link SqliteStore.open} (`store.open` for a missing file,
 *   `store.not_credbroker`, `store.schema_too_new`, …)
 */
export async function readAuditFromSqlite(path: string): Promise<AuditLogSnapshot> {
  const store = await SqliteStore.open(path, { readOnly: true });
  try {
    const snapshot = await store.openAuditSnapshot();
    return {
      entries: snapshot.entries,
      checkpoints: snapshot.checkpoints,
      close: async () => {
        snapshot.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}

/** {@link readAuditFromSqlite} then {@link verifyAuditLog}, closing the database in any case. */
export async function verifyAuditSqlite(path: string, options: AuditVerifyOptions = {}): Promise<AuditVerification> {
  const snapshot = await readAuditFromSqlite(path);
  try {
    return verifyAuditLog(snapshot.entries, snapshot.checkpoints, options);
  } finally {
    await snapshot.close();
  }
}
