/**
 * A broker for unit tests of the agent: no network, certificates that are only numbers and
 * dates (the agent's logic never parses them), failures queued per call, and a Watch stream the
 * test drives by hand.
 */
import { BrokerError, type Clock, type Secret } from '../../../src/core/index.js';
import type {
  BrokerTransport,
  IssuedCertificate,
  IssuedToken,
  JwksReply,
  ServiceIdentity,
  TokenRequest,
  TrustBundle,
  WatchEvent,
  WatchHandlers,
  WatchStream,
} from '../../../src/agent/index.js';

export type Method = 'enroll' | 'renew' | 'trustBundle' | 'watch' | 'issueToken' | 'jwks';

/** One open fake Watch stream. */
export interface FakeWatch {
  readonly serial: string;
  readonly handlers: WatchHandlers;
  cancelled: boolean;
}

export const SPIFFE_ID = 'spiffe://unit.test/pipeline/blur';

export function unavailable(message = 'connect ECONNREFUSED'): BrokerError {
  return new BrokerError('unavailable', { code: 'broker.unavailable', publicMessage: `${message} (UNAVAILABLE)`, retryable: true });
}

export function unauthenticated(message = 'the client certificate is revoked'): BrokerError {
  return new BrokerError('unauthenticated', { code: 'broker.unauthenticated', publicMessage: `${message} (UNAUTHENTICATED)`, retryable: false });
}

export class FakeTransport implements BrokerTransport {
  readonly calls: Method[] = [];
  /** Join tokens seen by enroll (their values: test tokens only). */
  readonly tokens: string[] = [];
  /** Serials of the identities that called renew. */
  readonly renewedFrom: string[] = [];
  /** Requested TTLs, per enroll/renew. */
  readonly ttls: number[] = [];
  readonly watches: FakeWatch[] = [];
  readonly #failures = new Map<Method, BrokerError[]>();
  readonly #clock: Clock;
  #serial = 0x10;
  /** Lifetime of issued certificates (seconds), backdated by 60 s as the broker does. */
  lifetimeSeconds = 3600;
  trustBundlePem = 'ROOTS-1';
  closed = false;
  /** Resolves the next renew/enroll only when the test says so (null: at once). */
  gate: Promise<void> | null = null;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The next `times` calls of `method` fail with `error`. */
  fail(method: Method, error: BrokerError, times = 1): void {
    const queue = this.#failures.get(method) ?? [];
    for (let i = 0; i < times; i++) queue.push(error);
    this.#failures.set(method, queue);
  }

  count(method: Method): number {
    return this.calls.filter((call) => call === method).length;
  }

  /** The Watch stream opened last and not cancelled. */
  get openWatch(): FakeWatch | undefined {
    return this.watches.filter((watch) => !watch.cancelled).at(-1);
  }

  async enroll(joinToken: Secret, _csrDer: Uint8Array, ttlSeconds: number): Promise<IssuedCertificate> {
    this.#call('enroll');
    this.tokens.push(joinToken.reveal((value) => value));
    this.ttls.push(ttlSeconds);
    await this.gate;
    return this.#issue();
  }

  async renew(identity: ServiceIdentity, _csrDer: Uint8Array, ttlSeconds: number): Promise<IssuedCertificate> {
    this.#call('renew');
    this.renewedFrom.push(identity.serial);
    this.ttls.push(ttlSeconds);
    await this.gate;
    return this.#issue();
  }

  trustBundle(): Promise<TrustBundle> {
    this.#call('trustBundle');
    return Promise.resolve({ rootsPem: this.trustBundlePem, intermediatesPem: 'INTERMEDIATE' });
  }

  watch(identity: ServiceIdentity, handlers: WatchHandlers): WatchStream {
    this.#call('watch');
    const watch: FakeWatch = { serial: identity.serial, handlers, cancelled: false };
    this.watches.push(watch);
    return {
      cancel: () => {
        watch.cancelled = true;
      },
    };
  }

  issueToken(_identity: ServiceIdentity, request: TokenRequest): Promise<IssuedToken> {
    this.#call('issueToken');
    const expiresAtUnix = Math.floor(this.#clock.now().getTime() / 1000) + (request.ttlSeconds ?? 300);
    return Promise.resolve({ token: `token-${this.count('issueToken')}`, tokenId: `jti-${this.count('issueToken')}`, expiresAtUnix, bound: request.bindToCertificate ?? false });
  }

  jwks(): Promise<JwksReply> {
    this.#call('jwks');
    return Promise.resolve({ jwksJson: '{"keys":[]}', currentKid: '' });
  }

  close(): void {
    this.closed = true;
  }

  /** Sends an event on the open Watch stream. */
  push(event: Partial<WatchEvent> & { kind: string }): void {
    const watch = this.openWatch;
    if (watch === undefined) throw new Error('no open Watch stream');
    watch.handlers.onEvent({ rotationId: '', serial: '', reason: '', timeUnixMs: this.#clock.now().getTime(), ...event });
  }

  /** Ends the open Watch stream (as the broker or the network would). */
  endWatch(error: BrokerError | null): void {
    const watch = this.openWatch;
    if (watch === undefined) throw new Error('no open Watch stream');
    watch.cancelled = true;
    watch.handlers.onEnd(error);
  }

  #call(method: Method): void {
    this.calls.push(method);
    const failure = this.#failures.get(method)?.shift();
    if (failure !== undefined) throw failure;
  }

  #issue(): IssuedCertificate {
    const nowSeconds = Math.floor(this.#clock.now().getTime() / 1000);
    const serial = (this.#serial++).toString(16).padStart(32, '0');
    return {
      certificatePem: `CERT ${serial}`,
      chainPem: 'INTERMEDIATE',
      trustBundlePem: this.trustBundlePem,
      serial,
      spiffeId: SPIFFE_ID,
      notBeforeUnix: nowSeconds - 60,
      notAfterUnix: nowSeconds - 60 + this.lifetimeSeconds,
    };
  }
}

/** A RandomSource that returns the same bytes every time (jitter draw fixed). */
export function fixedRandom(byte: number): { bytes(n: number): Buffer } {
  return { bytes: (n: number) => Buffer.alloc(n, byte) };
}
