/**
 * Signed checkpoints of the audit log: "the chain up to seq N has head hash H", signed by the
 * HSM audit key. A verifier holding the audit public key can then detect any rewrite of entries
 * up to N, even one that recomputed every hash, and truncation back past N.
 *
 * The scheduler is a thin loop (STYLE.md): {@link AuditCheckpointer.tick} decides and acts for
 * one instant, tests call it with a ManualClock; {@link AuditCheckpointer.start} only calls it
 * on an unref'd interval.
 */
import { createHash } from 'node:crypto';
import { BrokerError, isBrokerError, silentLogger, spkiOf, toBrokerError, verifySignature, type Clock, type Logger, type Signer } from '../core/index.js';
import type { AuditCheckpoint, Store } from '../store/index.js';
import { checkpointMessage } from './audit-chain.js';

/** Default: checkpoint after this many new entries. */
export const DEFAULT_CHECKPOINT_EVERY_ENTRIES = 1_000;
/** Default: checkpoint new entries at least this often, in ms. */
export const DEFAULT_CHECKPOINT_EVERY_MS = 60_000;
/** Default period of the production loop's {@link AuditCheckpointer.tick}, in ms. */
export const DEFAULT_CHECKPOINT_POLL_MS = 1_000;

/** Interval timers (Node's by default, unref'd); a seam for tests of start/stop. */
export interface IntervalTimers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const nodeTimers: IntervalTimers = {
  set: (callback, ms) => setInterval(callback, ms).unref(),
  clear: (handle) => {
    clearInterval(handle as NodeJS.Timeout);
  },
};

/** Options of an {@link AuditCheckpointer}. */
export interface AuditCheckpointerOptions {
  /** Sign once at least this many entries follow the last checkpoint (default 1,000; ≥ 1). */
  readonly everyEntries?: number;
  /** Sign when the last checkpoint is at least this old and entries follow it (default 60 s; ≥ 1 ms). */
  readonly everyMs?: number;
  /** How often {@link AuditCheckpointer.start}'s loop ticks, in ms (default 1 s). */
  readonly pollMs?: number;
  readonly logger?: Logger;
  readonly timers?: IntervalTimers;
}

/** Signs checkpoints of the audit log held in a {@link Store}. */
export class AuditCheckpointer {
  readonly everyEntries: number;
  readonly everyMs: number;
  readonly pollMs: number;
  readonly #store: Store;
  readonly #signer: Signer;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #timers: IntervalTimers;
  readonly #keySpkiSha256: string;
  #tail: Promise<unknown> = Promise.resolve();
  #interval: unknown = null;

  /**
   * @param signer the audit key (an HsmSigner in production)
   * @throws RangeError for a non-positive or non-integer option
   */
  constructor(store: Store, signer: Signer, clock: Clock, options: AuditCheckpointerOptions = {}) {
    this.everyEntries = positiveInteger(options.everyEntries ?? DEFAULT_CHECKPOINT_EVERY_ENTRIES, 'everyEntries');
    this.everyMs = positiveInteger(options.everyMs ?? DEFAULT_CHECKPOINT_EVERY_MS, 'everyMs');
    this.pollMs = positiveInteger(options.pollMs ?? DEFAULT_CHECKPOINT_POLL_MS, 'pollMs');
    this.#store = store;
    this.#signer = signer;
    this.#clock = clock;
    this.#logger = options.logger ?? silentLogger;
    this.#timers = options.timers ?? nodeTimers;
    this.#keySpkiSha256 = createHash('sha256').update(spkiOf(signer.publicKey)).digest('hex');
  }

  /**
   * Signs a checkpoint of the log's head if one is due at `now`: entries follow the last
   * checkpoint and either there is no checkpoint yet, or at least {@link everyEntries} entries
   * follow it, or it is at least {@link everyMs} old. The head is read in one transaction, signed
   * outside any transaction, and the checkpoint inserted in another. Calls run one after another.
   * @param now default: the clock's now; becomes the checkpoint's time
   * @returns the new checkpoint, or null when none was due (or another writer checkpointed first)
   * @throws BrokerError from the store or the signer (unavailable when the HSM is down);
   *   internal `audit.checkpoint_signature` if the signature does not verify
   */
  tick(now: Date = this.#clock.now()): Promise<AuditCheckpoint | null> {
    return this.#serialised(() => this.#checkpoint(now, false));
  }

  /**
   * Signs a checkpoint of the head now if any entry follows the last checkpoint, whatever the
   * thresholds (at shutdown, before a backup or an export).
   * @returns the new checkpoint, or null when every entry is already covered
   */
  flush(now: Date = this.#clock.now()): Promise<AuditCheckpoint | null> {
    return this.#serialised(() => this.#checkpoint(now, true));
  }

  /** Starts ticking every {@link pollMs} on an unref'd interval; failures are logged. Idempotent. */
  start(): void {
    if (this.#interval !== null) return;
    this.#interval = this.#timers.set(() => {
      this.tick().catch((error: unknown) => {
        this.#logger.error({ error: toBrokerError(error).toLogObject() }, 'audit checkpoint failed; will retry');
      });
    }, this.pollMs);
  }

  /** Stops the loop (a tick already running completes; await {@link tick} or {@link flush} after it for a last checkpoint). */
  stop(): void {
    if (this.#interval === null) return;
    this.#timers.clear(this.#interval);
    this.#interval = null;
  }

  /** True between {@link start} and {@link stop}. */
  get running(): boolean {
    return this.#interval !== null;
  }

  #serialised<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(run);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  async #checkpoint(now: Date, force: boolean): Promise<AuditCheckpoint | null> {
    const { head, last } = await this.#store.transaction(async (tx) => ({ head: await tx.lastAuditEntry(), last: await tx.lastAuditCheckpoint() }));
    if (head === null || (last !== null && head.seq <= last.seq)) return null;
    const due =
      force ||
      last === null ||
      head.seq - last.seq >= this.everyEntries ||
      now.getTime() - last.time.getTime() >= this.everyMs;
    if (!due) return null;

    const message = checkpointMessage(head.seq, head.hash, now);
    const signature = await this.#signer.sign(message);
    if (!verifySignature(this.#signer.algorithm, this.#signer.publicKey, message, signature)) {
      throw new BrokerError('internal', {
        code: 'audit.checkpoint_signature',
        publicMessage: 'internal error',
        logMessage: `audit: the checkpoint signature of ${this.#signer.description} at seq ${head.seq} does not verify`,
      });
    }
    const checkpoint: AuditCheckpoint = Object.freeze({
      seq: head.seq,
      hash: head.hash,
      time: new Date(now.getTime()),
      algorithm: this.#signer.algorithm,
      keySpkiSha256: this.#keySpkiSha256,
      signature: Buffer.from(signature).toString('base64'),
    });
    try {
      await this.#store.transaction((tx) => tx.insertAuditCheckpoint(checkpoint));
    } catch (error) {
      // Another broker sharing the store checkpointed the same or a later head first.
      if (isBrokerError(error, 'store.audit_checkpoint')) {
        this.#logger.debug({ seq: head.seq }, 'audit checkpoint superseded by another writer');
        return null;
      }
      throw error;
    }
    this.#logger.info({ seq: checkpoint.seq, key: this.#signer.description }, 'audit checkpoint signed');
    return checkpoint;
  }
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}
