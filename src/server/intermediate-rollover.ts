/**
 * The intermediate's lifecycle, tracked by the broker (SPIRE's prepare/activate, as functions
 * of `now`):
 *
 * - **prepared**: a next intermediate made by a ceremony (its key on the online token, its
 *   certificate signed by a root), listed in `ca.intermediates`. It is in the trust bundle at
 *   once, so every peer trusts it before it signs anything, but signs nothing yet.
 * - **active**: signs every new leaf (and the broker's own server certificate).
 * - **retiring**: replaced, but still in the trust bundle (and accepted from peers) until the
 *   last leaf it signed has expired.
 * - **retired**: out of the bundle.
 *
 * Schedule (defaults as SPIRE's): a next intermediate should be prepared by `prepareAtFraction`
 * (1/2) of the active one's life — the broker warns (log, metric, GetCaState) when none is; the
 * prepared one is activated at `activateAtFraction` (5/6), or at once when the active one has
 * expired, or early by an operator (Administration/RollIntermediate). Decisions are made by
 * {@link IntermediateRollover.tick} with the time given; the broker calls it on a timer and on
 * every issuance. Every change of the bundle is reported to `onBundleChanged` (Watch push).
 */
import { createHash } from 'node:crypto';
import type * as x509 from '@peculiar/x509';
import { BrokerError, silentLogger, type Logger, type Signer } from '../core/index.js';
import type { IssuingCa } from './broker-service.js';
import type { IntermediateRecord, RolloverState, RolloverStateStore } from './rollover-state-file.js';

/** Where an intermediate is in its lifecycle. */
export type IntermediateState = 'prepared' | 'active' | 'retiring' | 'retired';

/** An intermediate the broker can sign with. */
export interface CaIntermediate {
  /** Label of its key on the online token. */
  readonly keyLabel: string;
  readonly certificate: x509.X509Certificate;
  readonly signer: Signer;
}

/** The roll-over schedule, as fractions of the active intermediate's life. */
export interface RolloverSchedule {
  /** A next intermediate should exist by then (default 1/2). */
  readonly prepareAtFraction: number;
  /** The prepared one is activated then (default 5/6). */
  readonly activateAtFraction: number;
}

/** The default schedule: prepare at 1/2, activate at 5/6. */
export const DEFAULT_ROLLOVER_SCHEDULE: RolloverSchedule = Object.freeze({ prepareAtFraction: 0.5, activateAtFraction: 5 / 6 });

/** One intermediate as GetCaState shows it. */
export interface IntermediateView {
  readonly keyLabel: string;
  readonly certificate: x509.X509Certificate;
  readonly state: IntermediateState;
  readonly activatedAt: Date | null;
  readonly deactivatedAt: Date | null;
  /** Retiring: when it leaves the bundle (its last leaf's expiry). Active: when it is due for replacement. */
  readonly nextChangeAt: Date | null;
}

/** Options of {@link IntermediateRollover}. */
export interface IntermediateRolloverOptions {
  /** Every intermediate configured, oldest first (the config's `intermediateCertificate` first). */
  readonly intermediates: readonly CaIntermediate[];
  readonly roots: readonly x509.X509Certificate[];
  /** Cross certificates between the roots during a root renewal (see {@link IssuingCa}). Default none. */
  readonly crossCertificates?: readonly x509.X509Certificate[];
  readonly trustDomain: string;
  readonly schedule?: RolloverSchedule;
  /**
   * Longest leaf the broker may issue now (policy's certificate cap, the server certificate's
   * TTL): an intermediate stays in the bundle at least this long after it was replaced.
   */
  readonly maxLeafTtlMs: () => number;
  readonly state: RolloverStateStore;
  /** The state already loaded from `state`, when shared with the token keys' roll-over. */
  readonly loaded?: RolloverState;
  readonly logger?: Logger;
  /** Called after each change of the trust bundle (an intermediate prepared, activated or retired). */
  readonly onBundleChanged?: (reason: string) => void;
}

/** The point `fraction` of the way through a certificate's validity. */
export function pointOfLife(certificate: x509.X509Certificate, fraction: number): Date {
  const from = certificate.notBefore.getTime();
  return new Date(from + (certificate.notAfter.getTime() - from) * fraction);
}

interface Entry extends CaIntermediate {
  readonly sha256: string;
  readonly record: IntermediateRecord;
}

/** The broker's intermediates and which of them signs. */
export class IntermediateRollover {
  readonly #entries: Entry[] = [];
  readonly #roots: readonly x509.X509Certificate[];
  readonly #crossCertificates: readonly x509.X509Certificate[];
  readonly #trustDomain: string;
  readonly #schedule: RolloverSchedule;
  readonly #maxLeafTtlMs: () => number;
  readonly #store: RolloverStateStore;
  readonly #state: RolloverState;
  readonly #logger: Logger;
  readonly #onBundleChanged: (reason: string) => void;
  #ca: IssuingCa | null = null;
  #warning: string | null = null;

  /**
   * @param now the start time: with no recorded activation, the first intermediate is active from now
   * @throws BrokerError invalid when no intermediate is given
   */
  constructor(options: IntermediateRolloverOptions, now: Date) {
    this.#roots = options.roots;
    this.#crossCertificates = options.crossCertificates ?? [];
    this.#trustDomain = options.trustDomain;
    this.#schedule = options.schedule ?? DEFAULT_ROLLOVER_SCHEDULE;
    this.#maxLeafTtlMs = options.maxLeafTtlMs;
    this.#store = options.state;
    this.#state = options.loaded ?? options.state.load();
    this.#logger = options.logger ?? silentLogger;
    this.#onBundleChanged = options.onBundleChanged ?? (() => undefined);
    if (options.intermediates.length === 0) throw new BrokerError('invalid', { code: 'config.ca', publicMessage: 'the CA needs an intermediate' });
    for (const intermediate of options.intermediates) this.#addEntry(intermediate);
    const active = this.#entries.filter((e) => e.record.activatedAt !== null && e.record.deactivatedAt === null);
    if (active.length !== 1) {
      // First start (or a state file of other intermediates): the first one configured signs.
      const [first] = this.#entries;
      if (first === undefined) throw new BrokerError('invalid', { code: 'config.ca', publicMessage: 'the CA needs an intermediate' });
      for (const entry of active) if (entry !== first) entry.record.deactivatedAt = now;
      first.record.activatedAt ??= now;
      first.record.deactivatedAt = null;
      this.#save();
    }
    this.tick(now);
  }

  /** The intermediate that signs new leaves. */
  get active(): CaIntermediate {
    return this.#activeEntry();
  }

  /**
   * The CA to issue with at `now`: the roll-over schedule is applied first. The same object is
   * returned until something changes (reply PEMs are cached per object).
   */
  current(now: Date): IssuingCa {
    this.tick(now);
    return this.#currentCa();
  }

  /** Intermediates peers may present leaves of at `now`: active, prepared and retiring. */
  trusted(now: Date): readonly x509.X509Certificate[] {
    return this.current(now).intermediates ?? [];
  }

  /**
   * Applies the schedule at `now`: activates the prepared intermediate when due (or when the
   * active one has expired), retires the replaced ones whose last leaf expired, warns when no
   * next intermediate is prepared in time. Returns true if the bundle changed.
   */
  tick(now: Date): boolean {
    const changes: string[] = [];
    const active = this.#activeEntry();
    const nowMs = now.getTime();
    const expired = nowMs >= active.certificate.notAfter.getTime();
    if (expired || nowMs >= pointOfLife(active.certificate, this.#schedule.activateAtFraction).getTime()) {
      const next = this.#preparedFor(now);
      if (next !== null) changes.push(this.#activate(next, now, expired ? 'the active intermediate expired' : 'scheduled'));
      else if (expired) this.#warn(`the active intermediate ${serialOf(active)} expired at ${active.certificate.notAfter.toISOString()} and no next intermediate is prepared: no certificate can be issued; run a ceremony (pki/ceremonies/README.md)`);
    }
    for (const entry of this.#entries) {
      const retireAt = this.#retireAt(entry);
      if (retireAt !== null && entry.record.deactivatedAt !== null && !this.#retired(entry) && nowMs >= retireAt.getTime()) {
        this.#retiredSet.add(entry.sha256);
        changes.push(`intermediate ${serialOf(entry)} retired: its last leaf expired at ${retireAt.toISOString()}`);
      }
    }
    const warning = this.warning(now);
    if (warning !== null) this.#warn(warning);
    else this.#warning = null;
    if (changes.length === 0) return false;
    this.#ca = null;
    this.#save();
    for (const change of changes) {
      this.#logger.info({}, change);
      this.#onBundleChanged(change);
    }
    return true;
  }

  /** Why the schedule is at risk at `now` (no next intermediate by the prepare time), or null. */
  warning(now: Date): string | null {
    const active = this.#activeEntry();
    const prepareAt = pointOfLife(active.certificate, this.#schedule.prepareAtFraction);
    if (now.getTime() < prepareAt.getTime() || this.#preparedFor(null) !== null) return null;
    return `no next intermediate is prepared, and the active one (serial ${serialOf(active)}) passed its prepare time ${prepareAt.toISOString()}; it is due for replacement at ${pointOfLife(active.certificate, this.#schedule.activateAtFraction).toISOString()} and expires at ${active.certificate.notAfter.toISOString()}: run an intermediate ceremony and add it to ca.intermediates`;
  }

  /**
   * Activates the prepared intermediate now, ahead of the schedule (operators).
   * @throws BrokerError conflict when no prepared intermediate is valid now
   */
  activateNext(now: Date): CaIntermediate {
    this.tick(now);
    const next = this.#preparedFor(now);
    if (next === null) {
      throw new BrokerError('conflict', { code: 'ca.no_prepared_intermediate', publicMessage: 'no prepared intermediate is valid now: run an intermediate ceremony, add it to ca.intermediates and reload (SIGHUP) first' });
    }
    const change = this.#activate(next, now, 'early roll-over by an operator');
    this.#ca = null;
    this.#save();
    this.#logger.info({}, change);
    this.#onBundleChanged(change);
    return { keyLabel: next.keyLabel, certificate: next.certificate, signer: next.signer };
  }

  /**
   * Adds intermediates (a reload of `ca.intermediates`); known ones are skipped. Returns how
   * many were new (each is prepared and published at once).
   * @throws BrokerError invalid when one is not of this CA (other trust domain, no root of ours)
   */
  add(intermediates: readonly CaIntermediate[], now: Date): number {
    let added = 0;
    for (const intermediate of intermediates) {
      if (this.#entries.some((e) => e.sha256 === sha256Of(intermediate.certificate))) continue;
      this.#addEntry(intermediate);
      added++;
    }
    if (added > 0) {
      this.#ca = null;
      this.#save();
      const change = `${added} intermediate(s) prepared and published in the trust bundle`;
      this.#logger.info({}, change);
      this.#onBundleChanged(change);
      this.tick(now);
    }
    return added;
  }

  /** Records a leaf an intermediate signed (its notAfter keeps a retiring intermediate in the bundle). */
  noteIssued(issuerSerial: string, notAfter: Date): void {
    const entry = this.#entries.find((e) => serialOf(e) === issuerSerial);
    if (entry === undefined) return;
    const last = entry.record.lastLeafNotAfter;
    if (last === null || last.getTime() < notAfter.getTime()) {
      entry.record.lastLeafNotAfter = notAfter;
      // Persisted when it matters for a retirement: a leaf signed after the switch.
      if (entry.record.deactivatedAt !== null) this.#save();
    }
  }

  /** Every intermediate with its state at `now`, active first, then prepared, retiring, retired. */
  views(now: Date): IntermediateView[] {
    this.tick(now);
    const order: Record<IntermediateState, number> = { active: 0, prepared: 1, retiring: 2, retired: 3 };
    return this.#entries
      .map((entry) => {
        const state = this.#stateOf(entry);
        const nextChangeAt = state === 'active' ? pointOfLife(entry.certificate, this.#schedule.activateAtFraction) : state === 'retiring' ? this.#retireAt(entry) : null;
        return { keyLabel: entry.keyLabel, certificate: entry.certificate, state, activatedAt: entry.record.activatedAt, deactivatedAt: entry.record.deactivatedAt, nextChangeAt };
      })
      .sort((a, b) => order[a.state] - order[b.state]);
  }

  readonly #retiredSet = new Set<string>();

  #addEntry(intermediate: CaIntermediate): void {
    const sha256 = sha256Of(intermediate.certificate);
    let record = this.#state.intermediates.get(sha256);
    if (record === undefined) {
      record = { activatedAt: null, deactivatedAt: null, lastLeafNotAfter: null };
      this.#state.intermediates.set(sha256, record);
    }
    this.#entries.push({ ...intermediate, sha256, record });
  }

  #activeEntry(): Entry {
    const active = this.#entries.find((e) => e.record.activatedAt !== null && e.record.deactivatedAt === null);
    if (active === undefined) throw new BrokerError('internal', { code: 'ca.no_active', publicMessage: 'internal error' });
    return active;
  }

  /** The next intermediate: never activated, newer than the active one, valid at `now` (any time when null). */
  #preparedFor(now: Date | null): Entry | null {
    const active = this.#activeEntry();
    const candidates = this.#entries.filter(
      (e) =>
        e.record.activatedAt === null &&
        e.certificate.notAfter.getTime() > active.certificate.notAfter.getTime() &&
        (now === null || (e.certificate.notBefore.getTime() <= now.getTime() && now.getTime() < e.certificate.notAfter.getTime())),
    );
    // The one that lasts longest: a later ceremony supersedes an earlier one not yet activated.
    return candidates.reduce<Entry | null>((best, e) => (best === null || e.certificate.notAfter.getTime() > best.certificate.notAfter.getTime() ? e : best), null);
  }

  #activate(next: Entry, now: Date, why: string): string {
    const previous = this.#activeEntry();
    previous.record.deactivatedAt = now;
    next.record.activatedAt = now;
    return `intermediate ${serialOf(next)} (key "${next.keyLabel}") activated (${why}); ${serialOf(previous)} is retiring until ${this.#retireAt(previous)?.toISOString() ?? '?'}`;
  }

  /** When a replaced intermediate leaves the bundle: its last leaf's expiry, at the latest its own. */
  #retireAt(entry: Entry): Date | null {
    const deactivatedAt = entry.record.deactivatedAt;
    if (deactivatedAt === null) return null;
    const bound = deactivatedAt.getTime() + this.#maxLeafTtlMs();
    const seen = entry.record.lastLeafNotAfter?.getTime() ?? 0;
    return new Date(Math.min(entry.certificate.notAfter.getTime(), Math.max(bound, seen)));
  }

  #retired(entry: Entry): boolean {
    return this.#retiredSet.has(entry.sha256);
  }

  #stateOf(entry: Entry): IntermediateState {
    if (entry.record.activatedAt === null) return 'prepared';
    if (entry.record.deactivatedAt === null) return 'active';
    return this.#retired(entry) ? 'retired' : 'retiring';
  }

  #currentCa(): IssuingCa {
    if (this.#ca !== null) return this.#ca;
    const active = this.#activeEntry();
    const published = this.#entries.filter((e) => e !== active && this.#stateOf(e) !== 'retired');
    this.#ca = Object.freeze({
      roots: this.#roots,
      intermediate: active.certificate,
      signer: active.signer,
      trustDomain: this.#trustDomain,
      intermediates: Object.freeze([active.certificate, ...published.map((e) => e.certificate)]),
      crossCertificates: this.#crossCertificates,
    });
    return this.#ca;
  }

  #warn(message: string): void {
    if (this.#warning === message) return;
    this.#warning = message;
    this.#logger.warn({}, message);
  }

  #save(): void {
    try {
      this.#store.save(this.#state);
    } catch (error) {
      this.#logger.error({ error: String(error) }, 'the CA state file could not be written; the roll-over state is kept in memory');
    }
  }
}

function sha256Of(certificate: x509.X509Certificate): string {
  return createHash('sha256').update(new Uint8Array(certificate.rawData)).digest('hex');
}

function serialOf(intermediate: CaIntermediate): string {
  return intermediate.certificate.serialNumber.toLowerCase();
}
