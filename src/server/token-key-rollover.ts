/**
 * Token-signing key roll-over: the next key (made by a ceremony, `tokens.nextKey`) is published
 * in GetJwks at once and signs nothing until it has been published for `publishForMs` (longer
 * than any verifier's JWKS refresh, so no verifier ever meets an unknown kid), or until an
 * operator rolls early (Administration/RollTokenKey). The replaced key stays in the JWKS until
 * the last token it signed has expired ({@link MAX_TOKEN_TTL_MS} after the switch, or the
 * latest `exp` seen if later). Decisions are functions of the `now` given.
 */
import type { JWK } from 'jose';
import { BrokerError, silentLogger, type Logger } from '../core/index.js';
import { MAX_TOKEN_TTL_MS, type TokenIssuer } from '../tokens/index.js';
import type { RolloverState, RolloverStateStore } from './rollover-state-file.js';

/** A token-signing key as GetCaState shows it. */
export interface TokenKeyView {
  readonly kid: string;
  readonly keyLabel: string;
  /** `next`: published, not signing; `active`: signs; `retiring`: published until `until`. */
  readonly state: 'next' | 'active' | 'retiring';
  /** next: when it starts signing; retiring: when it leaves the JWKS; active: null. */
  readonly until: Date | null;
}

/** A configured key and its issuer. */
export interface LabelledIssuer {
  readonly keyLabel: string;
  readonly issuer: TokenIssuer;
}

/** Options of {@link TokenKeyRollover}. */
export interface TokenKeyRolloverOptions {
  /** `tokens.key`. */
  readonly current: LabelledIssuer;
  /** `tokens.nextKey`, if any. */
  readonly next: LabelledIssuer | null;
  /** How long the next key is published before it signs. */
  readonly publishForMs: number;
  readonly state: RolloverStateStore;
  /** The state already loaded from `state` (shared with the intermediates' roll-over). */
  readonly loaded: RolloverState;
  readonly logger?: Logger;
  /** Called after the signing key changed or a key left the JWKS. */
  readonly onChanged?: (reason: string) => void;
}

/** Which token-signing key signs, and which keys GetJwks publishes. */
export class TokenKeyRollover {
  readonly #keys: LabelledIssuer[];
  readonly #publishForMs: number;
  readonly #store: RolloverStateStore;
  readonly #state: RolloverState;
  readonly #logger: Logger;
  readonly #onChanged: (reason: string) => void;
  #latestExpiry = 0;

  constructor(options: TokenKeyRolloverOptions, now: Date) {
    this.#keys = [options.current, ...(options.next === null ? [] : [options.next])];
    this.#publishForMs = options.publishForMs;
    this.#store = options.state;
    this.#state = options.loaded;
    this.#logger = options.logger ?? silentLogger;
    this.#onChanged = options.onChanged ?? (() => undefined);
    const record = this.#state.tokenKeys;
    const known = (kid: string | null | undefined): boolean => kid != null && this.#keys.some((k) => k.issuer.kid === kid);
    if (record === null || !known(record.activeKid)) {
      if (record !== null) this.#logger.warn({ kid: record.activeKid }, 'the recorded token-signing key is not configured; tokens.key signs');
      this.#state.tokenKeys = { activeKid: options.current.issuer.kid, switchedAt: null, previousKid: null, nextKid: null, nextPublishedAt: null };
    }
    const keys = this.#record();
    const next = options.next;
    if (next !== null && next.issuer.kid !== keys.activeKid && keys.nextKid !== next.issuer.kid) {
      keys.nextKid = next.issuer.kid;
      keys.nextPublishedAt = now;
    }
    if (next === null || next.issuer.kid === keys.activeKid) {
      keys.nextKid = null;
      keys.nextPublishedAt = null;
    }
    this.#save();
    this.tick(now);
  }

  /** The issuer that signs at `now` (the schedule applied first). */
  issuer(now: Date): TokenIssuer {
    this.tick(now);
    return this.#byKid(this.#record().activeKid).issuer;
  }

  /**
   * Publishes a next key (a reload of `tokens.nextKey`); it signs once it has been published for
   * the configured time. A key already known is left as it is. Returns true if it was new.
   */
  setNext(next: LabelledIssuer, now: Date): boolean {
    if (this.#keys.some((k) => k.issuer.kid === next.issuer.kid)) return false;
    this.#keys.push(next);
    const keys = this.#record();
    keys.nextKid = next.issuer.kid;
    keys.nextPublishedAt = now;
    this.#save();
    const message = `token-signing key ${next.issuer.kid} ("${next.keyLabel}") published in the JWKS; it signs from ${new Date(now.getTime() + this.#publishForMs).toISOString()}`;
    this.#logger.info({}, message);
    this.#onChanged(message);
    return true;
  }

  /** Records a token's expiry: the replaced key stays published until the latest one. */
  noteIssued(expiresAt: Date): void {
    this.#latestExpiry = Math.max(this.#latestExpiry, expiresAt.getTime());
  }

  /** The JWKS members at `now`: the active key, the next one and the retiring one. */
  jwks(now: Date): { keys: JWK[]; activeKid: string } {
    const views = this.views(now);
    return { keys: views.map((v) => this.#byKid(v.kid).issuer.jwk), activeKid: this.#record().activeKid };
  }

  /** Switches to the next key when it has been published long enough; returns true if it did. */
  tick(now: Date): boolean {
    const keys = this.#record();
    if (keys.nextKid === null || keys.nextPublishedAt === null) return false;
    if (now.getTime() < keys.nextPublishedAt.getTime() + this.#publishForMs) return false;
    this.#switch(now, 'scheduled');
    return true;
  }

  /**
   * Switches to the next key now (operators).
   * @throws BrokerError conflict when no next key is configured
   */
  rollNow(now: Date): TokenKeyView {
    const keys = this.#record();
    if (keys.nextKid === null) {
      throw new BrokerError('conflict', { code: 'tokens.no_next_key', publicMessage: 'no next token-signing key is configured: run a ceremony for a new key, set tokens.nextKey and reload (SIGHUP) first' });
    }
    this.#switch(now, 'early roll-over by an operator');
    const active = this.views(now).find((v) => v.state === 'active');
    if (active === undefined) throw new BrokerError('internal', { code: 'tokens.state', publicMessage: 'internal error' });
    return active;
  }

  /** Every published key at `now`. */
  views(now: Date): TokenKeyView[] {
    this.tick(now);
    const keys = this.#record();
    const views: TokenKeyView[] = [{ kid: keys.activeKid, keyLabel: this.#byKid(keys.activeKid).keyLabel, state: 'active', until: null }];
    if (keys.nextKid !== null && keys.nextPublishedAt !== null) {
      views.push({ kid: keys.nextKid, keyLabel: this.#byKid(keys.nextKid).keyLabel, state: 'next', until: new Date(keys.nextPublishedAt.getTime() + this.#publishForMs) });
    }
    const retireAt = this.#retireAt();
    if (keys.previousKid !== null && retireAt !== null && now.getTime() < retireAt.getTime() && this.#keys.some((k) => k.issuer.kid === keys.previousKid)) {
      views.push({ kid: keys.previousKid, keyLabel: this.#byKid(keys.previousKid).keyLabel, state: 'retiring', until: retireAt });
    }
    return views;
  }

  #switch(now: Date, why: string): void {
    const keys = this.#record();
    if (keys.nextKid === null) return;
    const previous = keys.activeKid;
    // Tokens of the old key issued so far expire by now + the cap (or the latest exp seen).
    this.#latestExpiry = Math.max(this.#latestExpiry, now.getTime() + MAX_TOKEN_TTL_MS);
    this.#state.tokenKeys = { activeKid: keys.nextKid, switchedAt: now, previousKid: previous, nextKid: null, nextPublishedAt: null };
    this.#save();
    const message = `token-signing key ${keys.nextKid} signs from now on (${why}); ${previous} stays in the JWKS until ${new Date(this.#latestExpiry).toISOString()}`;
    this.#logger.info({}, message);
    this.#onChanged(message);
  }

  #retireAt(): Date | null {
    const keys = this.#record();
    if (keys.switchedAt === null) return null;
    return new Date(Math.max(keys.switchedAt.getTime() + MAX_TOKEN_TTL_MS, this.#latestExpiry));
  }

  #record(): NonNullable<RolloverState['tokenKeys']> {
    const keys = this.#state.tokenKeys;
    if (keys === null) throw new BrokerError('internal', { code: 'tokens.state', publicMessage: 'internal error' });
    return keys;
  }

  #byKid(kid: string): LabelledIssuer {
    const found = this.#keys.find((k) => k.issuer.kid === kid);
    if (found === undefined) throw new BrokerError('internal', { code: 'tokens.state', publicMessage: 'internal error', logMessage: `token key ${kid} is not configured` });
    return found;
  }

  #save(): void {
    try {
      this.#store.save(this.#state);
    } catch (error) {
      this.#logger.error({ error: String(error) }, 'the CA state file could not be written; the token key state is kept in memory');
    }
  }
}
