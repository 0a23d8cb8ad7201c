/**
 * Administration/GetCaState, RollIntermediate and RollTokenKey: the CA's roll-over state for
 * operators, and early roll-overs. Operators only (PERMISSION_DENIED for services); every call
 * is audited, allowed or denied.
 */
import { createHash } from 'node:crypto';
import { BrokerError, type Clock } from '../core/index.js';
import type { Caller, Decisions } from './decisions.js';
import type { IntermediateRollover } from './intermediate-rollover.js';
import type { TokenKeyRollover } from './token-key-rollover.js';

/** CaState of administration.proto. */
export interface CaStateReply {
  readonly intermediates: readonly {
    state: string;
    keyLabel: string;
    subject: string;
    serial: string;
    notBeforeUnix: number;
    notAfterUnix: number;
    activatedAtUnix: number;
    deactivatedAtUnix: number;
    nextChangeUnix: number;
    sha256: string;
  }[];
  readonly tokenKeys: readonly { state: string; kid: string; keyLabel: string; untilUnix: number }[];
  readonly warnings: readonly string[];
  readonly nowUnix: number;
  readonly requestId: string;
}

const unix = (date: Date | null): number => (date === null ? 0 : Math.floor(date.getTime() / 1000));

/** The CA roll-over RPCs. */
export class CaService {
  readonly #decisions: Decisions;
  readonly #intermediates: IntermediateRollover;
  readonly #tokenKeys: TokenKeyRollover | null;
  readonly #clock: Clock;

  constructor(options: { decisions: Decisions; intermediates: IntermediateRollover; tokenKeys: TokenKeyRollover | null; clock: Clock }) {
    this.#decisions = options.decisions;
    this.#intermediates = options.intermediates;
    this.#tokenKeys = options.tokenKeys;
    this.#clock = options.clock;
  }

  /** GetCaState (operators). */
  getCaState(caller: Caller): Promise<CaStateReply> {
    return this.#decisions.decide(caller, 'GetCaState', '', async () => {
      this.#decisions.requireOperator(caller);
      const state = this.state(caller.requestId);
      await this.#decisions.store.transaction((tx) => this.#decisions.allowed(tx, caller, 'GetCaState', '', { warnings: state.warnings.length }));
      return state;
    });
  }

  /** RollIntermediate (operators): the prepared intermediate signs from now on. */
  rollIntermediate(caller: Caller): Promise<CaStateReply> {
    return this.#decisions.decide(caller, 'RollIntermediate', '', async (record) => {
      this.#decisions.requireOperator(caller);
      const previous = this.#intermediates.active.certificate.serialNumber.toLowerCase();
      const next = this.#intermediates.activateNext(this.#clock.now());
      const serial = next.certificate.serialNumber.toLowerCase();
      record.subject = serial;
      await this.#decisions.store.transaction((tx) => this.#decisions.allowed(tx, caller, 'RollIntermediate', serial, { previous, keyLabel: next.keyLabel, notAfter: next.certificate.notAfter.toISOString() }));
      return this.state(caller.requestId);
    });
  }

  /** RollTokenKey (operators): the next token-signing key signs from now on. */
  rollTokenKey(caller: Caller): Promise<CaStateReply> {
    return this.#decisions.decide(caller, 'RollTokenKey', '', async (record) => {
      this.#decisions.requireOperator(caller);
      if (this.#tokenKeys === null) {
        throw new BrokerError('conflict', { code: 'tokens.not_configured', publicMessage: 'this broker issues no tokens: its config has no tokens section (token-signing key)' });
      }
      const active = this.#tokenKeys.rollNow(this.#clock.now());
      record.subject = active.kid;
      await this.#decisions.store.transaction((tx) => this.#decisions.allowed(tx, caller, 'RollTokenKey', active.kid, { keyLabel: active.keyLabel }));
      return this.state(caller.requestId);
    });
  }

  /** The state now (no audit: for the RPCs above and for tests). */
  state(requestId = ''): CaStateReply {
    const now = this.#clock.now();
    const warning = this.#intermediates.warning(now);
    return {
      intermediates: this.#intermediates.views(now).map((view) => ({
        state: view.state,
        keyLabel: view.keyLabel,
        subject: view.certificate.subject,
        serial: view.certificate.serialNumber.toLowerCase(),
        notBeforeUnix: unix(view.certificate.notBefore),
        notAfterUnix: unix(view.certificate.notAfter),
        activatedAtUnix: unix(view.activatedAt),
        deactivatedAtUnix: unix(view.deactivatedAt),
        nextChangeUnix: unix(view.nextChangeAt),
        sha256: createHash('sha256').update(new Uint8Array(view.certificate.rawData)).digest('hex'),
      })),
      tokenKeys: (this.#tokenKeys?.views(now) ?? []).map((key) => ({ state: key.state, kid: key.kid, keyLabel: key.keyLabel, untilUnix: unix(key.until) })),
      warnings: warning === null ? [] : [warning],
      nowUnix: unix(now),
      requestId,
    };
  }
}
