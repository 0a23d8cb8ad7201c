/**
 * Time per stage of Renew inside the benchmark's broker, without a hook in src/: the probe wraps
 * methods of objects that {@link RunningBroker} exposes — the instances the broker itself calls —
 * as test/helpers/softhsm.ts's `countLogins` spies on C_Login:
 *
 * - `service.renew`: the whole decision (after TLS, HTTP/2, protobuf and the peer check);
 * - `token.signRaw`: the HSM's C_Sign, per key label (the leaf key vs the audit checkpoint key);
 * - `store.transaction`: wall time from call to commit, and inside it each StoreTransaction
 *   method (certificate rows vs audit rows; the audit span runs from reading the chain's head to
 *   inserting the entry, so it includes the hash chaining).
 *
 * What cannot be separated this way — CSR check, TBS build, verify-after-sign, reply encoding —
 * is reported together as the rest of `renew`. Times are wall clock per call: at concurrency
 * above 1 they include waiting for the event loop, the HSM session and the group commit.
 * Only for benchmarks: the wrappers stay for the broker's lifetime.
 */
import { performance } from 'node:perf_hooks';
import type { RunningBroker } from '../../src/server/index.js';
import type { StoreTransaction } from '../../src/store/index.js';

/** Sums over a measurement window (ms and counts). */
export interface StageTotals {
  /** Renew decisions completed (successful or not). */
  readonly renews: number;
  readonly renewMs: number;
  /** HSM signatures with the leaf-issuing key. */
  readonly signs: number;
  readonly signMs: number;
  /** HSM signatures with any other key (audit checkpoints), off the request path. */
  readonly otherSigns: number;
  readonly otherSignMs: number;
  readonly transactions: number;
  /** From `transaction()` called to its promise settled: queue, batch, work, COMMIT + fsync. */
  readonly transactionMs: number;
  /** Certificate rows: getCertificate, insertCertificate and other non-audit methods. */
  readonly storeMs: number;
  /** Audit rows: head read, chaining, insert; checkpoint rows. */
  readonly auditMs: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function zero(): Mutable<StageTotals> {
  return { renews: 0, renewMs: 0, signs: 0, signMs: 0, otherSigns: 0, otherSignMs: 0, transactions: 0, transactionMs: 0, storeMs: 0, auditMs: 0 };
}

/** Stage timing of a running broker; {@link start} and {@link stop} bound a window. */
export class StageProbe {
  #totals = zero();
  #measuring = false;

  private constructor() {}

  /** Wraps the broker's service, token and store. `leafKeyLabel` names the issuing key on the token. */
  static attach(broker: RunningBroker, leafKeyLabel: string): StageProbe {
    const probe = new StageProbe();
    const add = (update: (totals: Mutable<StageTotals>) => void): void => {
      if (probe.#measuring) update(probe.#totals);
    };

    const service = broker.service;
    const renew = service.renew.bind(service);
    service.renew = async (caller, request) => {
      const started = performance.now();
      try {
        return await renew(caller, request);
      } finally {
        const ms = performance.now() - started;
        add((t) => {
          t.renews++;
          t.renewMs += ms;
        });
      }
    };

    const token = broker.token;
    const signRaw = token.signRaw.bind(token);
    token.signRaw = async (label, keyType, data) => {
      const started = performance.now();
      try {
        return await signRaw(label, keyType, data);
      } finally {
        const ms = performance.now() - started;
        add((t) => {
          if (label === leafKeyLabel) {
            t.signs++;
            t.signMs += ms;
          } else {
            t.otherSigns++;
            t.otherSignMs += ms;
          }
        });
      }
    };

    const store = broker.store;
    const transaction = store.transaction.bind(store);
    store.transaction = async <T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> => {
      const started = performance.now();
      try {
        return await transaction((tx) => work(timedTransaction(tx, add)));
      } finally {
        const ms = performance.now() - started;
        add((t) => {
          t.transactions++;
          t.transactionMs += ms;
        });
      }
    };
    return probe;
  }

  /** Starts a window (totals from zero). */
  start(): void {
    this.#totals = zero();
    this.#measuring = true;
  }

  /** Ends the window and returns its totals. */
  stop(): StageTotals {
    this.#measuring = false;
    return { ...this.#totals };
  }
}

/**
 * A view of `tx` that times each method call. Store methods run synchronously and return a
 * settled promise (store.ts), so the time around the call is the work itself.
 */
function timedTransaction(tx: StoreTransaction, add: (update: (totals: Mutable<StageTotals>) => void) => void): StoreTransaction {
  let auditHeadReadAt = -1;
  return new Proxy(tx, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      const name = String(property);
      return (...args: unknown[]): unknown => {
        const started = performance.now();
        if (name === 'lastAuditEntry') auditHeadReadAt = started;
        const result = method.apply(target, args);
        const ended = performance.now();
        if (name === 'lastAuditEntry') return result;
        if (name === 'insertAuditEntry') {
          const from = auditHeadReadAt >= 0 ? auditHeadReadAt : started;
          auditHeadReadAt = -1;
          add((t) => (t.auditMs += ended - from));
        } else if (name.includes('Audit')) {
          add((t) => (t.auditMs += ended - started));
        } else {
          add((t) => (t.storeMs += ended - started));
        }
        return result;
      };
    },
  });
}
