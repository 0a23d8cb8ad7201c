/**
 * Pushed rotation (DESIGN.md "Rotation"): agents keep a Watch stream open; ForceRotate records
 * which live certificates must be replaced and pushes "renew now" to the connected holders; each
 * Renew of a targeted serial completes its target and revokes the old serial (superseded, or
 * the reason the operator gave). With keyCompromise every target is revoked at once instead:
 * the old key cannot be trusted to ask for its own replacement, so recovery is a new join token.
 *
 * MTTR of a target is the time from the request until its new certificate was issued.
 * The hub is in memory, per broker process: a broker that restarts loses the open streams (agents
 * reconnect and get RENEW_NOW for every pending target of their serial on connect).
 */
import { BrokerError, type Clock, type RandomSource, type RevocationReason } from '../core/index.js';
import { parseSpiffePattern, spiffePatternMatches, type SpiffePattern } from '../policy/index.js';
import type { CertificateRecord, RotationRecord, RotationTargetRecord, StoreTransaction } from '../store/index.js';
import type { RenewalEffects } from './broker-service.js';
import { requirePeer, type Caller, type Decisions } from './decisions.js';
import type { PeerIdentity } from './peer-verifier.js';

/** An event on a Watch stream (rotation.proto WatchEvent, enum names as strings). */
export interface WatchEventMessage {
  readonly kind: 'WATCHING' | 'RENEW_NOW' | 'TRUST_BUNDLE_CHANGED';
  readonly rotationId: string;
  readonly serial: string;
  readonly reason: RevocationReason;
  readonly timeUnixMs: number;
}

/** Where a Watch stream's events go (the gRPC call, or a test). */
export interface WatchSink {
  send(event: WatchEventMessage): void;
  /** Ends the stream (the holder's certificate was revoked, or the broker drains). */
  end(): void;
}

interface Watcher {
  readonly peer: PeerIdentity;
  readonly sink: WatchSink;
}

/** The open Watch streams of this broker, by certificate serial. */
export class RotationHub {
  readonly #bySerial = new Map<string, Set<Watcher>>();
  #closed = false;

  /** Registers a stream; returns its removal. */
  add(peer: PeerIdentity, sink: WatchSink): () => void {
    if (this.#closed) {
      sink.end();
      return () => undefined;
    }
    const watcher: Watcher = { peer, sink };
    let set = this.#bySerial.get(peer.serial);
    if (set === undefined) {
      set = new Set();
      this.#bySerial.set(peer.serial, set);
    }
    set.add(watcher);
    return () => {
      const current = this.#bySerial.get(peer.serial);
      current?.delete(watcher);
      if (current?.size === 0) this.#bySerial.delete(peer.serial);
    };
  }

  /** True if a holder of `serial` has a stream open. */
  isConnected(serial: string): boolean {
    return this.#bySerial.has(serial);
  }

  /** Open streams. */
  get size(): number {
    let count = 0;
    for (const set of this.#bySerial.values()) count += set.size;
    return count;
  }

  /** Sends `event` to the holders of `serial`; returns how many streams got it. */
  push(serial: string, event: WatchEventMessage): number {
    const set = this.#bySerial.get(serial);
    if (set === undefined) return 0;
    for (const watcher of set) watcher.sink.send(event);
    return set.size;
  }

  /** Sends `event` to every stream. */
  broadcast(event: WatchEventMessage): void {
    for (const set of this.#bySerial.values()) for (const watcher of set) watcher.sink.send(event);
  }

  /** Ends the streams of a revoked serial: they would only hear of it when calling. */
  endSerial(serial: string): void {
    const set = this.#bySerial.get(serial);
    if (set === undefined) return;
    this.#bySerial.delete(serial);
    for (const watcher of set) watcher.sink.end();
  }

  /** Ends every stream and refuses new ones (drain). */
  close(): void {
    this.#closed = true;
    const all = [...this.#bySerial.values()];
    this.#bySerial.clear();
    for (const set of all) for (const watcher of set) watcher.sink.end();
  }
}

/** Told of rotations (metrics), after their commits; it must be cheap and must not throw. */
export interface RotationObserver {
  /** ForceRotate committed, choosing `targets` live certificates. */
  rotationRequested(reason: RevocationReason, targets: number): void;
  /** A target's holder renewed, `seconds` after the rotation was asked (its MTTR). */
  targetRotated(reason: RevocationReason, seconds: number): void;
}

/** GetRotation's figures. */
export interface RotationStatusReply {
  readonly rotationId: string;
  readonly selector: string;
  readonly reason: RevocationReason;
  readonly requestedBy: string;
  readonly requestedAtUnixMs: number;
  readonly targeted: number;
  readonly connected: number;
  readonly rotated: number;
  readonly pending: number;
  readonly revoked: number;
  readonly expired: number;
  readonly mttrP50Ms: number;
  readonly mttrP99Ms: number;
  readonly mttrMaxMs: number;
  readonly complete: boolean;
  readonly requestId: string;
}

/** Reasons ForceRotate takes: the holder renews, then its old serial is revoked with the reason; keyCompromise revokes at once. */
const ROTATION_REASONS: readonly RevocationReason[] = Object.freeze(['superseded', 'keyCompromise', 'affiliationChanged', 'privilegeWithdrawn', 'cessationOfOperation']);
/** Most certificates one rotation may target (the store pages through them in one transaction). */
export const MAX_ROTATION_TARGETS = 100_000;
const PAGE = 1000;

/** ForceRotate, GetRotation, Watch and the bookkeeping inside Renew. */
export class RotationService {
  readonly hub: RotationHub;
  readonly #decisions: Decisions;
  readonly #clock: Clock;
  readonly #random: RandomSource;
  readonly #trustDomain: () => string;
  readonly #onRevoked: (serial: string) => void;
  readonly #observer: RotationObserver | null;

  /**
   * @param options.onRevoked called after a commit that revoked `serial` (revocation cache, Watch streams, CRL)
   * @param options.observer told of requested rotations and rotated targets (metrics)
   */
  constructor(options: {
    decisions: Decisions;
    clock: Clock;
    random: RandomSource;
    trustDomain: () => string;
    onRevoked: (serial: string) => void;
    hub?: RotationHub;
    observer?: RotationObserver;
  }) {
    this.hub = options.hub ?? new RotationHub();
    this.#decisions = options.decisions;
    this.#clock = options.clock;
    this.#random = options.random;
    this.#trustDomain = options.trustDomain;
    this.#onRevoked = options.onRevoked;
    this.#observer = options.observer ?? null;
  }

  /**
   * Registers a Watch stream of the (verified) caller: WATCHING first, then RENEW_NOW at once
   * for a rotation still pending on its certificate. Returns the removal of the stream.
   */
  async watch(caller: Caller, sink: WatchSink): Promise<() => void> {
    const peer = requirePeer(caller);
    const remove = this.hub.add(peer, sink);
    sink.send(this.#event('WATCHING', '', peer.serial, 'unspecified'));
    const pending = await this.#decisions.store.transaction((tx) => tx.pendingRotationTargets(peer.serial));
    const first = pending[0];
    if (first !== undefined) {
      const rotation = await this.#decisions.store.transaction((tx) => tx.getRotation(first.rotationId));
      sink.send(this.#event('RENEW_NOW', first.rotationId, peer.serial, rotation?.reason ?? 'superseded'));
    }
    return remove;
  }

  /** ForceRotate (operators). */
  forceRotate(caller: Caller, request: { selector: string; all: boolean; reason: RevocationReason }): Promise<RotationStatusReply> {
    return this.#decisions.decide(caller, 'ForceRotate', request.all ? '*' : request.selector.slice(0, 300), async (record) => {
      const operator = this.#decisions.requireOperator(caller);
      const reason: RevocationReason = request.reason === 'unspecified' ? 'superseded' : request.reason;
      if (!ROTATION_REASONS.includes(reason)) {
        throw invalid('rotation.reason', `reason ${reason} does not apply to a forced rotation: use SUPERSEDED, KEY_COMPROMISE, AFFILIATION_CHANGED, PRIVILEGE_WITHDRAWN or CESSATION_OF_OPERATION`);
      }
      const pattern = this.#selector(request);
      const now = this.#clock.now();
      const rotation: RotationRecord = { id: `rot-${Buffer.from(this.#random.bytes(16)).toString('hex')}`, selector: pattern?.text ?? '*', reason, requestedBy: operator.spiffeId, requestedAt: now };
      record.details.rotationId = rotation.id;
      record.details.reason = reason;
      const atOnce = reason === 'keyCompromise';
      const targets = await this.#decisions.store.transaction(async (tx) => {
        const live = await this.#liveCertificates(tx, pattern, now);
        await tx.insertRotation(rotation);
        const chosen: RotationTargetRecord[] = [];
        for (const certificate of live) {
          const target: RotationTargetRecord = {
            rotationId: rotation.id,
            serial: certificate.serial,
            spiffeId: certificate.spiffeId,
            notAfter: certificate.notAfter,
            connected: this.hub.isConnected(certificate.serial),
            status: atOnce ? 'revoked' : 'pending',
            newSerial: null,
            finishedAt: atOnce ? now : null,
          };
          await tx.insertRotationTarget(target);
          if (atOnce) {
            await tx.revokeCertificate(certificate.serial, now, reason);
            await this.#decisions.append(tx, this.#decisions.entry(caller, 'Revoke', 'allowed', certificate.serial, '', { reason, rotationId: rotation.id, spiffeId: certificate.spiffeId }));
          }
          chosen.push(target);
        }
        await this.#decisions.allowed(tx, caller, 'ForceRotate', rotation.selector, {
          rotationId: rotation.id,
          reason,
          targeted: chosen.length,
          connected: chosen.filter((t) => t.connected).length,
        });
        return chosen;
      });
      this.#observer?.rotationRequested(reason, targets.length);
      for (const target of targets) {
        this.hub.push(target.serial, this.#event('RENEW_NOW', rotation.id, target.serial, reason));
        if (atOnce) this.#onRevoked(target.serial);
      }
      return status(rotation, targets, now, caller.requestId);
    });
  }

  /** GetRotation (operators). */
  getRotation(caller: Caller, request: { rotationId: string }): Promise<RotationStatusReply> {
    return this.#decisions.decide(caller, 'GetRotation', request.rotationId.slice(0, 100), async () => {
      this.#decisions.requireOperator(caller);
      if (!/^rot-[0-9a-f]{32}$/.test(request.rotationId)) throw invalid('rotation.id', `"${request.rotationId.slice(0, 60)}" is not a rotation id (rot- and 32 hex digits, as ForceRotate returned)`);
      const found = await this.#decisions.store.transaction(async (tx) => {
        const rotation = await tx.getRotation(request.rotationId);
        return rotation === null ? null : { rotation, targets: await tx.listRotationTargets(rotation.id) };
      });
      if (found === null) throw new BrokerError('not_found', { code: 'rotation.unknown', publicMessage: `no rotation ${request.rotationId}` });
      return status(found.rotation, found.targets, this.#clock.now(), caller.requestId);
    });
  }

  /**
   * Inside a Renew's transaction: completes the pending targets of the old serial and revokes it
   * with the rotation's reason. Returns the serials revoked and, for after the commit, the
   * report of each completed target's MTTR to the observer.
   */
  async onRenewed(tx: StoreTransaction, caller: Caller, oldSerial: string, renewed: CertificateRecord): Promise<RenewalEffects> {
    const pending = await tx.pendingRotationTargets(oldSerial);
    if (pending.length === 0) return { revoked: [] };
    let revokedWith: RevocationReason | null = null;
    const rotated: { reason: RevocationReason; seconds: number }[] = [];
    for (const target of pending) {
      const finished = await tx.finishRotationTarget(target.rotationId, oldSerial, 'rotated', renewed.serial, renewed.issuedAt);
      const rotation = await tx.getRotation(target.rotationId);
      const reason = rotation?.reason ?? 'superseded';
      if (finished && rotation !== null) rotated.push({ reason, seconds: Math.max(0, renewed.issuedAt.getTime() - rotation.requestedAt.getTime()) / 1000 });
      if (revokedWith === null && (await tx.revokeCertificate(oldSerial, renewed.issuedAt, reason))) {
        revokedWith = reason;
        await this.#decisions.append(tx, {
          ...this.#decisions.entry(caller, 'Revoke', 'allowed', oldSerial, '', { reason, rotationId: target.rotationId, supersededBy: renewed.serial, spiffeId: renewed.spiffeId }),
          actor: rotation?.requestedBy ?? caller.peer?.spiffeId ?? 'anonymous',
        });
      }
    }
    const observer = this.#observer;
    return {
      revoked: revokedWith === null ? [] : [oldSerial],
      ...(observer === null || rotated.length === 0
        ? {}
        : {
            afterCommit: () => {
              for (const target of rotated) observer.targetRotated(target.reason, target.seconds);
            },
          }),
    };
  }

  /** Tells every open stream that the trust bundle changed. */
  trustBundleChanged(): void {
    this.hub.broadcast(this.#event('TRUST_BUNDLE_CHANGED', '', '', 'unspecified'));
  }

  #selector(request: { selector: string; all: boolean }): SpiffePattern | null {
    if (request.all) {
      if (request.selector !== '') throw invalid('rotation.selector', 'give either a selector or all = true, not both');
      return null;
    }
    if (request.selector === '') throw invalid('rotation.selector', 'give a selector (SPIFFE ID or pattern such as spiffe://<trust-domain>/pipeline/**) or all = true');
    const parsed = parseSpiffePattern(request.selector, true);
    if (!parsed.ok) throw invalid('rotation.selector', `the selector ${parsed.problem}`);
    if (parsed.pattern.trustDomain !== this.#trustDomain()) {
      throw invalid('rotation.selector', `the selector is of trust domain ${parsed.pattern.trustDomain}, not this broker's (${this.#trustDomain()})`);
    }
    return parsed.pattern;
  }

  /** Live certificates matching `pattern` (null: all), read in pages within the transaction. */
  async #liveCertificates(tx: StoreTransaction, pattern: SpiffePattern | null, now: Date): Promise<CertificateRecord[]> {
    const prefix = pattern === null ? undefined : literalPrefix(pattern);
    const live: CertificateRecord[] = [];
    let token = '';
    do {
      const page = await tx.listCertificates({ ...(prefix === undefined ? {} : { spiffeId: prefix }), validAt: now, revoked: false }, PAGE, token);
      for (const certificate of page.items) {
        if (certificate.profile === 'server') continue;
        if (pattern !== null) {
          const id = parseSpiffePattern(certificate.spiffeId, false);
          if (!id.ok || !spiffePatternMatches(pattern, id.pattern)) continue;
        }
        live.push(certificate);
        if (live.length > MAX_ROTATION_TARGETS) {
          throw new BrokerError('exhausted', { code: 'rotation.too_many', publicMessage: `the selector matches more than ${MAX_ROTATION_TARGETS} live certificates: rotate in narrower groups` });
        }
      }
      token = page.nextPageToken;
    } while (token !== '');
    return live;
  }

  #event(kind: WatchEventMessage['kind'], rotationId: string, serial: string, reason: RevocationReason): WatchEventMessage {
    return { kind, rotationId, serial, reason, timeUnixMs: this.#clock.now().getTime() };
  }
}

/** The SPIFFE ID itself for an exact selector, else the path up to the first wildcard, ending in `/`. */
function literalPrefix(pattern: SpiffePattern): string {
  const base = `spiffe://${pattern.trustDomain}/`;
  if (!pattern.isPattern) return pattern.text;
  const literal: string[] = [];
  for (const segment of pattern.segments) {
    if (segment === '*' || segment === '**') break;
    literal.push(segment);
  }
  return literal.length === 0 ? base : `${base}${literal.join('/')}/`;
}

/** A rotation's progress at `now`: counts by state and the MTTR of each rotated target. */
export interface RotationProgress {
  readonly targeted: number;
  readonly connected: number;
  readonly rotated: number;
  /** Pending and not yet expired. */
  readonly pending: number;
  readonly revoked: number;
  /** Pending, but the old certificate expired unrenewed. */
  readonly expired: number;
  /** Request → new certificate of each rotated target, ms, ascending. */
  readonly mttrMs: readonly number[];
}

/** The progress of a rotation at `now`: GetRotation and `credbroker report` both count with this. */
export function rotationProgress(rotation: RotationRecord, targets: readonly RotationTargetRecord[], now: Date): RotationProgress {
  const count = (predicate: (target: RotationTargetRecord) => boolean): number => targets.filter(predicate).length;
  const expired = count((t) => t.status === 'pending' && t.notAfter.getTime() < now.getTime());
  return {
    targeted: targets.length,
    connected: count((t) => t.connected),
    rotated: count((t) => t.status === 'rotated'),
    pending: count((t) => t.status === 'pending') - expired,
    revoked: count((t) => t.status === 'revoked'),
    expired,
    mttrMs: targets
      .filter((t) => t.status === 'rotated' && t.finishedAt !== null)
      .map((t) => Math.max(0, (t.finishedAt?.getTime() ?? 0) - rotation.requestedAt.getTime()))
      .sort((x, y) => x - y),
  };
}

function status(rotation: RotationRecord, targets: readonly RotationTargetRecord[], now: Date, requestId: string): RotationStatusReply {
  const { mttrMs: mttr, ...counts } = rotationProgress(rotation, targets, now);
  return {
    rotationId: rotation.id,
    selector: rotation.selector,
    reason: rotation.reason,
    requestedBy: rotation.requestedBy,
    requestedAtUnixMs: rotation.requestedAt.getTime(),
    ...counts,
    mttrP50Ms: percentile(mttr, 0.5),
    mttrP99Ms: percentile(mttr, 0.99),
    mttrMaxMs: mttr.at(-1) ?? 0,
    complete: counts.pending === 0,
    requestId,
  };
}

/** Nearest-rank percentile of sorted values; 0 for none. */
function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

function invalid(code: string, message: string): BrokerError {
  return new BrokerError('invalid', { code, publicMessage: message });
}
