/**
 * What the agent asks of the broker, as one interface: the agent's logic ({@link AgentCore})
 * talks to this seam, the gRPC implementation below talks to the broker, and unit tests put a
 * fake in between. gRPC failures become {@link BrokerError}s here (kind from the status code,
 * message from the broker's public text), so nothing above this file knows grpc-js.
 */
import * as grpc from '@grpc/grpc-js';
import { BrokerError, type Secret } from '../core/index.js';
import { connectBroker, unary, type BrokerClients } from './broker-client.js';
import type { IssuedCertificate, ServiceIdentity } from './service-identity.js';

/** One event of the Rotation/Watch stream (proto/credbroker/v1/rotation.proto). */
export interface WatchEvent {
  /** `WATCHING`, `RENEW_NOW` or `TRUST_BUNDLE_CHANGED` (other values are ignored). */
  readonly kind: string;
  readonly rotationId: string;
  /** For RENEW_NOW: the serial to replace. */
  readonly serial: string;
  /** For RENEW_NOW: the revocation reason name, e.g. `REVOCATION_REASON_SUPERSEDED`. */
  readonly reason: string;
  readonly timeUnixMs: number;
}

/** Callbacks of one Watch stream. */
export interface WatchHandlers {
  onEvent(event: WatchEvent): void;
  /** Called once when the stream ends: null when the broker closed it cleanly. Not called after cancel(). */
  onEnd(error: BrokerError | null): void;
}

/** An open Watch stream. */
export interface WatchStream {
  /** Closes the stream; its handlers are not called any more. */
  cancel(): void;
}

/** What IssueToken asks for. */
export interface TokenRequest {
  readonly audience: string;
  readonly scopes: readonly string[];
  /** 0 or absent: the identity's default. */
  readonly ttlSeconds?: number;
  readonly bindToCertificate?: boolean;
}

/** What IssueToken returns. */
export interface IssuedToken {
  /** The compact JWS: a secret, never logged. */
  readonly token: string;
  readonly tokenId: string;
  readonly expiresAtUnix: number;
  readonly bound: boolean;
}

/** The trust bundle as GetTrustBundle returns it. */
export interface TrustBundle {
  readonly rootsPem: string;
  readonly intermediatesPem: string;
}

/** The JWK Set as GetJwks returns it. */
export interface JwksReply {
  readonly jwksJson: string;
  readonly currentKid: string;
}

/**
 * The broker's calls a service needs. Every method rejects with a {@link BrokerError} whose
 * kind says what to do: `unauthenticated` (join token refused, certificate revoked or
 * expired: a new join token is needed), `unavailable`/`exhausted` (retry later), others (a
 * request the broker will not grant as it stands).
 */
export interface BrokerTransport {
  /** Enrollment/Enroll over TLS without a client certificate. */
  enroll(joinToken: Secret, csrDer: Uint8Array, ttlSeconds: number): Promise<IssuedCertificate>;
  /** Certificates/Renew with `identity` as the client certificate. */
  renew(identity: ServiceIdentity, csrDer: Uint8Array, ttlSeconds: number): Promise<IssuedCertificate>;
  /** Enrollment/GetTrustBundle (with the identity's certificate when there is one). */
  trustBundle(identity: ServiceIdentity | null): Promise<TrustBundle>;
  /** Rotation/Watch with `identity` as the client certificate. */
  watch(identity: ServiceIdentity, handlers: WatchHandlers): WatchStream;
  /** Tokens/IssueToken with `identity` as the client certificate. */
  issueToken(identity: ServiceIdentity, request: TokenRequest): Promise<IssuedToken>;
  /** Tokens/GetJwks. */
  jwks(identity: ServiceIdentity | null): Promise<JwksReply>;
  /** Closes every connection. */
  close(): void;
}

/** How {@link GrpcBrokerTransport} reaches the broker. */
export interface GrpcBrokerTransportOptions {
  /** host:port */
  readonly address: string;
  /** Name to verify in the broker's certificate (default: the host of `address`). */
  readonly serverName?: string;
  /** Roots that authenticate the broker before the service has its own trust bundle (PEM). */
  readonly bootstrapTrustBundlePem: string;
  /** Deadline of each unary call; default 30 s. */
  readonly callTimeoutMs?: number;
}

/** The {@link BrokerTransport} over grpc-js (the only implementation outside tests). */
export class GrpcBrokerTransport implements BrokerTransport {
  readonly #options: GrpcBrokerTransportOptions;
  readonly #timeoutMs: number;
  #current: { key: string; clients: BrokerClients } | null = null;
  /** The clients before the last switch: closed one switch later, so calls in flight on them finish. */
  #previous: BrokerClients | null = null;
  #closed = false;

  constructor(options: GrpcBrokerTransportOptions) {
    this.#options = options;
    this.#timeoutMs = options.callTimeoutMs ?? 30_000;
  }

  async enroll(joinToken: Secret, csrDer: Uint8Array, ttlSeconds: number): Promise<IssuedCertificate> {
    // A fresh channel per attempt: no client certificate, and no reconnect backoff inherited from
    // an earlier failure (the agent has its own).
    const clients = connectBroker(this.#connection(null));
    try {
      return await joinToken.reveal((token) =>
        unary<IssuedCertificate>(clients.enrollment, 'Enroll', { joinToken: token, csr: Buffer.from(csrDer), ttlSeconds }, this.#timeoutMs),
      );
    } catch (error) {
      throw brokerErrorOf(error, 'Enroll');
    } finally {
      clients.close();
    }
  }

  async renew(identity: ServiceIdentity, csrDer: Uint8Array, ttlSeconds: number): Promise<IssuedCertificate> {
    try {
      return await unary<IssuedCertificate>(this.#clientsFor(identity).certificates, 'Renew', { csr: Buffer.from(csrDer), ttlSeconds }, this.#timeoutMs);
    } catch (error) {
      throw brokerErrorOf(error, 'Renew');
    }
  }

  async trustBundle(identity: ServiceIdentity | null): Promise<TrustBundle> {
    const clients = identity === null ? connectBroker(this.#connection(null)) : this.#clientsFor(identity);
    try {
      return await unary<TrustBundle>(clients.enrollment, 'GetTrustBundle', {}, this.#timeoutMs);
    } catch (error) {
      throw brokerErrorOf(error, 'GetTrustBundle');
    } finally {
      if (identity === null) clients.close();
    }
  }

  watch(identity: ServiceIdentity, handlers: WatchHandlers): WatchStream {
    const client = this.#clientsFor(identity).rotation;
    const method = client.Watch;
    if (typeof method !== 'function') throw new BrokerError('internal', { code: 'agent.no_watch', publicMessage: 'the Rotation service has no Watch method' });
    const call = (method as (request: unknown, options: grpc.CallOptions) => grpc.ClientReadableStream<WatchEvent>).call(client, {}, {});
    let open = true;
    const end = (error: BrokerError | null): void => {
      if (!open) return;
      open = false;
      handlers.onEnd(error);
    };
    call.on('data', (event: WatchEvent) => {
      if (open) handlers.onEvent(event);
    });
    // grpc-js emits 'error' for a non-OK status and then 'status' for every end: the first one
    // that arrives decides.
    call.on('error', (error: unknown) => {
      end(brokerErrorOf(error, 'Watch'));
    });
    call.on('status', (status: grpc.StatusObject) => {
      end(status.code === grpc.status.OK ? null : brokerErrorOf(Object.assign(new Error(status.details), { code: status.code, details: status.details, metadata: status.metadata }), 'Watch'));
    });
    return {
      cancel: () => {
        open = false;
        call.cancel();
      },
    };
  }

  async issueToken(identity: ServiceIdentity, request: TokenRequest): Promise<IssuedToken> {
    try {
      return await unary<IssuedToken>(
        this.#clientsFor(identity).tokens,
        'IssueToken',
        { audience: request.audience, scopes: [...request.scopes], ttlSeconds: request.ttlSeconds ?? 0, bindToCertificate: request.bindToCertificate ?? false },
        this.#timeoutMs,
      );
    } catch (error) {
      throw brokerErrorOf(error, 'IssueToken');
    }
  }

  async jwks(identity: ServiceIdentity | null): Promise<JwksReply> {
    const clients = identity === null ? connectBroker(this.#connection(null)) : this.#clientsFor(identity);
    try {
      return await unary<JwksReply>(clients.tokens, 'GetJwks', {}, this.#timeoutMs);
    } catch (error) {
      throw brokerErrorOf(error, 'GetJwks');
    } finally {
      if (identity === null) clients.close();
    }
  }

  close(): void {
    this.#closed = true;
    this.#previous?.close();
    this.#current?.clients.close();
    this.#previous = null;
    this.#current = null;
  }

  /** The mTLS clients of `identity`, opened on first use; switching identity retires the old ones. */
  #clientsFor(identity: ServiceIdentity): BrokerClients {
    if (this.#closed) throw new BrokerError('unavailable', { code: 'agent.closed', publicMessage: 'the broker connection is closed', retryable: false });
    const key = `${identity.serial}\n${identity.trustBundlePem}`;
    if (this.#current?.key === key) return this.#current.clients;
    this.#previous?.close();
    this.#previous = this.#current?.clients ?? null;
    const clients = connectBroker(this.#connection(identity));
    this.#current = { key, clients };
    return clients;
  }

  #connection(identity: ServiceIdentity | null): Parameters<typeof connectBroker>[0] {
    const base = {
      address: this.#options.address,
      trustBundlePem: identity === null ? this.#options.bootstrapTrustBundlePem : joinRoots(this.#options.bootstrapTrustBundlePem, identity.trustBundlePem),
      ...(this.#options.serverName === undefined ? {} : { serverName: this.#options.serverName }),
    };
    if (identity === null) return base;
    return { ...base, clientKeyPem: identity.privateKeyPem(), clientCertificateChainPem: identity.certificateChainPem };
  }
}

/** Roots that authenticate the broker: the bootstrap ones and those the broker has since sent. */
function joinRoots(bootstrap: string, current: string): string {
  return current.includes(bootstrap.trim()) ? current : `${bootstrap.trim()}\n${current}`;
}

/** The kind of failure each gRPC status means to the agent. */
const KIND_OF_STATUS: Readonly<Partial<Record<grpc.status, BrokerError['kind']>>> = Object.freeze({
  [grpc.status.INVALID_ARGUMENT]: 'invalid',
  [grpc.status.OUT_OF_RANGE]: 'invalid',
  [grpc.status.UNAUTHENTICATED]: 'unauthenticated',
  [grpc.status.PERMISSION_DENIED]: 'denied',
  [grpc.status.NOT_FOUND]: 'not_found',
  [grpc.status.ALREADY_EXISTS]: 'conflict',
  [grpc.status.FAILED_PRECONDITION]: 'conflict',
  [grpc.status.RESOURCE_EXHAUSTED]: 'exhausted',
  [grpc.status.UNAVAILABLE]: 'unavailable',
  [grpc.status.DEADLINE_EXCEEDED]: 'unavailable',
  [grpc.status.CANCELLED]: 'unavailable',
  [grpc.status.ABORTED]: 'unavailable',
  // Not served (yet) by this broker: worth trying again later, not a reason to give up.
  [grpc.status.UNIMPLEMENTED]: 'unavailable',
});

/**
 * A gRPC failure as a BrokerError: kind from the status (UNAUTHENTICATED → `unauthenticated`,
 * UNAVAILABLE → `unavailable`, ...), code `broker.<status name>`, message naming the call, the
 * broker's public message and the status. Other errors become `internal`.
 */
export function brokerErrorOf(error: unknown, call: string): BrokerError {
  if (error instanceof BrokerError) return error;
  if (isServiceError(error)) {
    const name = grpc.status[error.code];
    const kind = KIND_OF_STATUS[error.code] ?? 'internal';
    return new BrokerError(kind, {
      code: `broker.${name.toLowerCase()}`,
      publicMessage: `${call}: ${error.details === '' ? 'no details' : error.details} (${name})`,
      cause: error,
      retryable: kind === 'unavailable' || kind === 'exhausted',
    });
  }
  return new BrokerError('internal', { code: 'agent.internal', publicMessage: `${call} failed: ${error instanceof Error ? error.message : String(error)}`, cause: error });
}

function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === 'number' && typeof grpc.status[(error as grpc.ServiceError).code] === 'string';
}
