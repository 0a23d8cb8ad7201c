/**
 * How every RPC records its decision, shared by the broker's services: a decision that throws a
 * BrokerError is audited as a denial (or failure) in a transaction of its own, then rethrown for
 * the status table; one that succeeds audits itself inside its own transaction ({@link allowed}).
 */
import { BrokerError, silentLogger, type Clock, type Logger } from '../core/index.js';
import type { PolicyHolder } from '../policy/index.js';
import type { AuditLog } from '../audit/index.js';
import type { AuditEntryInput, Store, StoreTransaction } from '../store/index.js';
import type { PeerIdentity } from './peer-verifier.js';

/** Who is asking, as the transport established it. */
export interface Caller {
  readonly requestId: string;
  /** The verified client certificate's identity; null on enrollment calls without one. */
  readonly peer: PeerIdentity | null;
  /** When the transport received the call (broker clock): allowed decisions record their latency. */
  readonly receivedAt?: Date;
}

/** Details recorded with a decision; a decision fills them as it learns (e.g. the serial). */
export interface DecisionRecord {
  subject: string;
  details: Record<string, string | number | boolean>;
}

/** Records decisions in the audit log, and answers who may do what. */
export class Decisions {
  readonly store: Store;
  readonly #audit: AuditLog;
  readonly #policy: PolicyHolder;
  readonly #clock: Clock;
  readonly #logger: Logger;

  constructor(options: { store: Store; audit: AuditLog; policy: PolicyHolder; clock: Clock; logger?: Logger }) {
    this.store = options.store;
    this.#audit = options.audit;
    this.#policy = options.policy;
    this.#clock = options.clock;
    this.#logger = options.logger ?? silentLogger;
  }

  /**
   * Runs a decision; any error it throws is audited as a denial (or failure) in its own
   * transaction, then rethrown for the status table.
   */
  async decide<T>(caller: Caller, action: string, subject: string, work: (record: DecisionRecord) => Promise<T>): Promise<T> {
    const record: DecisionRecord = { subject, details: {} };
    try {
      return await work(record);
    } catch (error) {
      await this.auditFailure(caller, action, record.subject, record.details, error);
      throw error;
    }
  }

  /**
   * Appends the "allowed" entry of a decision inside its transaction, with `latencyMs` (receipt
   * of the call until this entry, broker clock) when the transport said when the call arrived:
   * the retrieval latency reports read it back.
   */
  async allowed(tx: StoreTransaction, caller: Caller, action: string, subject: string, details: AuditEntryInput['details']): Promise<void> {
    const entry = this.entry(caller, action, 'allowed', subject, '', details);
    const latency = caller.receivedAt === undefined ? null : Math.max(0, entry.time.getTime() - caller.receivedAt.getTime());
    await this.#audit.append(tx, latency === null ? entry : { ...entry, details: { ...details, latencyMs: latency } });
  }

  /** Appends any entry inside a transaction (the audit module chains it). */
  async append(tx: StoreTransaction, input: AuditEntryInput): Promise<void> {
    await this.#audit.append(tx, input);
  }

  /**
   * An audit entry of `caller` now. Caller-supplied text (a subject or detail) longer than
   * {@link MAX_AUDITED_TEXT} is cut, saying how much was left out: a refusal of an absurd input is
   * audited like any other, and the audit log never grows by what a caller chooses to send.
   */
  entry(caller: Caller, action: string, outcome: AuditEntryInput['outcome'], subject: string, reason: string, details: AuditEntryInput['details']): AuditEntryInput {
    const clipped: Record<string, AuditEntryInput['details'][string]> = {};
    for (const [key, value] of Object.entries(details)) clipped[key] = typeof value === 'string' ? clip(value) : Array.isArray(value) ? value.map(clip) : value;
    return { time: this.#clock.now(), requestId: caller.requestId, actor: caller.peer?.spiffeId ?? 'anonymous', action, outcome, subject: clip(subject), reason: clip(reason), details: clipped };
  }

  /** Audits a refused decision (denied for BrokerErrors of the caller's making, failed otherwise). */
  async auditFailure(caller: Caller, action: string, subject: string, details: Record<string, string | number | boolean>, error: unknown): Promise<void> {
    const broker = error instanceof BrokerError ? error : null;
    const outcome: AuditEntryInput['outcome'] = broker === null || broker.kind === 'internal' || broker.kind === 'unavailable' ? 'failed' : 'denied';
    try {
      await this.store.transaction(async (tx) => {
        await this.#audit.append(tx, this.entry(caller, action, outcome, subject, broker?.code ?? 'internal', details));
      });
    } catch (auditError) {
      this.#logger.error({ requestId: caller.requestId, error: String(auditError) }, 'could not audit a refusal');
    }
    this.#logger.info({ requestId: caller.requestId, action, outcome, code: broker?.code ?? 'internal', message: broker?.logMessage ?? String(error) }, 'request refused');
  }

  /** True if policy gives `peer` the operator role. */
  isOperator(peer: PeerIdentity): boolean {
    return this.#policy.current.lookup(peer.spiffeId)?.role === 'operator';
  }

  /** The caller's verified identity, if it is an operator; else PERMISSION_DENIED / UNAUTHENTICATED. */
  requireOperator(caller: Caller): PeerIdentity {
    const peer = requirePeer(caller);
    if (!this.isOperator(peer)) {
      throw new BrokerError('denied', { code: 'policy.not_operator', publicMessage: `${peer.spiffeId} is not an operator: this call needs an operator identity` });
    }
    return peer;
  }
}

/** Longest caller-supplied text an audit entry keeps, in characters. */
export const MAX_AUDITED_TEXT = 512;

/**
 * `text`, cut to {@link MAX_AUDITED_TEXT} characters with a note of the rest, NUL characters
 * written as `\0` (PostgreSQL text cannot hold them; the entry must be storable in every store).
 */
function clip(raw: string): string {
  const text = raw.includes('\u0000') ? raw.replaceAll('\u0000', '\\0') : raw;
  if (text.length <= MAX_AUDITED_TEXT) return text;
  // Never split a surrogate pair: the store refuses lone surrogates.
  const head = Array.from(text.slice(0, MAX_AUDITED_TEXT + 1)).join('').slice(0, MAX_AUDITED_TEXT).replace(/[\uD800-\uDBFF]$/, '');
  return `${head}…(${text.length - head.length} more characters)`;
}

/** The caller's verified identity, or UNAUTHENTICATED. */
export function requirePeer(caller: Caller): PeerIdentity {
  if (caller.peer === null) {
    throw new BrokerError('unauthenticated', { code: 'peer.no_certificate', publicMessage: 'this call needs a client certificate issued by this broker (mutual TLS): none was presented, or it does not chain to this broker\'s CA; enroll first with a join token' });
  }
  return caller.peer;
}
