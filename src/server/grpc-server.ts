/**
 * The gRPC transport of `credbroker serve`: one TLS listener for every service.
 *
 * The handshake asks every client for a certificate but lets it finish without one, so a
 * service that has none yet can call Enrollment (join token), GetTrustBundle and health.
 * Every other call verifies the client certificate itself ({@link PeerVerifier}): chain to this
 * broker's CA for client authentication, validity now, not revoked, a SPIFFE ID of the trust
 * domain. One listener, per-RPC enforcement: operators and services need one address only.
 *
 * The broker's own server certificate is issued by its intermediate at start (key in memory,
 * never written) and renewed at two thirds of its life without a restart. Node's TLS defaults
 * apply: TLS 1.2 minimum, 1.3 preferred, grpc-js's cipher list (AEAD suites).
 */
import { randomUUID } from 'node:crypto';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { BrokerError, silentLogger, type Clock, type Logger } from '../core/index.js';
import { PROTO_DIR, PROTO_FILES, loadBrokerApi } from '../agent/index.js';
import type { BrokerService, Caller } from './broker-service.js';
import type { CaService } from './ca-service.js';
import { REQUEST_ID_HEADER, toServiceError } from './grpc-status.js';
import { withProtoComments } from './proto-comments.js';
import { RateLimiter, sourceAddress, type RateLimit } from './rate-limiter.js';
import type { PeerVerifier } from './peer-verifier.js';
import type { RotationService } from './rotation-service.js';
import type { TokenService } from './token-service.js';

/** Marks a request grpc-js could not decode (see {@link tolerantDeserializers}). */
const UNDECODABLE = Symbol('undecodable request');

function isUndecodable(request: unknown): request is { [UNDECODABLE]: string } {
  return typeof request === 'object' && request !== null && UNDECODABLE in request;
}

/**
 * The service's methods with deserializers that never throw: grpc-js answers INTERNAL for a
 * request its deserializer rejects, before any handler runs (so it is not audited either). A
 * malformed message is the caller's input error: the handler sees a marker and answers
 * INVALID_ARGUMENT, audited like any refusal.
 */
function tolerantDeserializers(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const methods: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition as Record<string, grpc.MethodDefinition<unknown, unknown>>)) {
    methods[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return method.requestDeserialize(bytes);
        } catch (error) {
          return { [UNDECODABLE]: error instanceof Error ? error.message : String(error) };
        }
      },
    };
  }
  return methods;
}

/**
 * TLS 1.2 suites the listener accepts: ECDHE (forward secrecy) with AEAD only; TLS 1.3's suites
 * are all AEAD. grpc-js passes no cipher list of its own (only GRPC_SSL_CIPHER_SUITES, read once
 * at load), and Node's default list still has CBC suites, so the process default is narrowed
 * when the broker starts (every TLS context of this process made afterwards uses it).
 */
export const AEAD_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
].join(':');

/** The names grpc.health.v1 answers for: the whole server ('') and each service. */
const HEALTH_SERVICES: readonly string[] = Object.freeze(['', 'credbroker.v1.Enrollment', 'credbroker.v1.Certificates', 'credbroker.v1.Administration', 'credbroker.v1.Tokens', 'credbroker.v1.Rotation']);

/** Largest request or reply, in bytes (a CSR is at most 16 KiB; listings are paginated). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** The server's key and certificate chain (PEM), replaced when renewed. */
export interface ServerIdentity {
  readonly privateKeyPem: string;
  readonly certificateChainPem: string;
  /** CA certificates the TLS layer offers as acceptable client issuers (PEM). */
  readonly clientCaPem: string;
}

/** Pushes new server identities to grpc-js without a restart. */
class IdentityProvider implements grpc.experimental.CertificateProvider {
  #identity: ServerIdentity;
  readonly #caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  readonly #identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();

  constructor(identity: ServerIdentity) {
    this.#identity = identity;
  }

  update(identity: ServerIdentity): void {
    this.#identity = identity;
    for (const listener of this.#caListeners) listener({ caCertificate: Buffer.from(identity.clientCaPem) });
    for (const listener of this.#identityListeners) listener({ certificate: Buffer.from(identity.certificateChainPem), privateKey: Buffer.from(identity.privateKeyPem) });
  }

  // grpc-js registers its watcher only after adding these listeners: answer on the next tick,
  // as its own file-watching provider does, or the first update is lost.
  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.#caListeners.add(listener);
    queueMicrotask(() => {
      listener({ caCertificate: Buffer.from(this.#identity.clientCaPem) });
    });
  }

  removeCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.#caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.#identityListeners.add(listener);
    queueMicrotask(() => {
      listener({ certificate: Buffer.from(this.#identity.certificateChainPem), privateKey: Buffer.from(this.#identity.privateKeyPem) });
    });
  }

  removeIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.#identityListeners.delete(listener);
  }
}

/** Options of {@link BrokerServer.start}. */
export interface BrokerServerOptions {
  readonly service: BrokerService;
  readonly tokens: TokenService;
  readonly rotation: RotationService;
  readonly peers: PeerVerifier;
  readonly identity: ServerIdentity;
  readonly clock: Clock;
  /** host:port; port 0 picks a free port. */
  readonly listen: string;
  /** Enroll attempts per source address. */
  readonly enrollRateLimit: RateLimit;
  readonly logger?: Logger;
  /** Told of each call's outcome and latency (metrics); default none. */
  readonly observer?: RpcObserver;
  /** GetCaState, RollIntermediate, RollTokenKey; absent: those calls answer UNIMPLEMENTED. */
  readonly ca?: CaService;
}

/**
 * Told of every call's outcome, for metrics. It runs on every RPC: it must be cheap (a counter,
 * a histogram; no I/O) and must not throw.
 */
export interface RpcObserver {
  /** A unary call `rpc` ended with `code` (OK included) after `seconds` (receipt to reply). */
  unaryFinished(rpc: string, code: grpc.status, seconds: number): void;
  /** A Watch stream was accepted (OK) or refused (`code`). */
  watchStarted(code: grpc.status): void;
}

type UnaryHandler = (caller: Caller, request: Record<string, unknown>, source: string) => Promise<unknown>;

/** The running gRPC server. */
export class BrokerServer {
  readonly port: number;
  readonly health: HealthImplementation;
  readonly #server: grpc.Server;
  readonly #provider: IdentityProvider;

  readonly #beforeStop: () => void;

  private constructor(server: grpc.Server, port: number, provider: IdentityProvider, health: HealthImplementation, beforeStop: () => void) {
    this.#beforeStop = beforeStop;
    this.#server = server;
    this.port = port;
    this.#provider = provider;
    this.health = health;
  }

  /** Binds and starts serving. @throws Error when the address cannot be bound */
  static async start(options: BrokerServerOptions): Promise<BrokerServer> {
    const logger = options.logger ?? silentLogger;
    tls.DEFAULT_CIPHERS = AEAD_CIPHERS;
    tls.DEFAULT_MIN_VERSION = 'TLSv1.2';
    const { definition, grpcObject } = loadBrokerApi([healthProtoPath]);
    const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES, 'grpc.max_send_message_length': MAX_MESSAGE_BYTES });
    const v1 = ((grpcObject.credbroker as grpc.GrpcObject).v1 as grpc.GrpcObject);
    const serviceOf = (name: string): grpc.ServiceDefinition => tolerantDeserializers((v1[name] as grpc.ServiceClientConstructor).service);
    const { service, peers, clock, tokens, rotation } = options;
    const ca = options.ca;
    const enrollLimiter = new RateLimiter(options.enrollRateLimit, clock);
    const observer = options.observer ?? null;

    const wrap = (name: string, handler: UnaryHandler, needsPeer: boolean): grpc.handleUnaryCall<Record<string, unknown>, unknown> => {
      return (call, callback) => {
        const started = performance.now();
        const requestId = randomUUID();
        const receivedAt = clock.now();
        const metadata = new grpc.Metadata();
        metadata.set(REQUEST_ID_HEADER, requestId);
        call.sendMetadata(metadata);
        const run = async (): Promise<unknown> => {
          // grpc-js shows the peer certificate only when TLS verified it against our CA list
          // (roots and intermediates); PeerVerifier then checks everything again, and more.
          const der = call.getAuthContext().sslPeerCertificate?.raw;
          let peer = null;
          if (needsPeer || der !== undefined) {
            try {
              peer = await peers.verify(der, clock.now());
            } catch (error) {
              // Enrollment calls work without a certificate; with a bad one they are refused.
              await service.auditRefusal({ requestId, peer: null }, name, error);
              throw error;
            }
          }
          if (isUndecodable(call.request)) {
            const error = new BrokerError('invalid', { code: 'request.undecodable', publicMessage: `the request is not a valid ${name} message (protobuf)`, logMessage: `undecodable ${name} request: ${call.request[UNDECODABLE]}` });
            await service.auditRefusal({ requestId, peer, receivedAt }, name, error);
            throw error;
          }
          return handler({ requestId, peer, receivedAt }, call.request, sourceAddress(call.getPeer()));
        };
        run().then(
          (reply) => {
            observer?.unaryFinished(name, grpc.status.OK, (performance.now() - started) / 1000);
            callback(null, reply);
          },
          (error: unknown) => {
            logger.debug({ requestId, rpc: name, error: String(error) }, 'rpc failed');
            const reply = toServiceError(error, requestId);
            observer?.unaryFinished(name, reply.code, (performance.now() - started) / 1000);
            callback(reply);
          },
        );
      };
    };

    const bytes = (value: unknown): Uint8Array => (Buffer.isBuffer(value) ? value : Buffer.alloc(0));
    const text = (value: unknown): string => (typeof value === 'string' ? value : '');
    const number = (value: unknown): number => (typeof value === 'number' ? value : 0);

    server.addService(serviceOf('Enrollment'), {
      Enroll: wrap(
        'Enroll',
        async (caller, r, source) => {
          try {
            enrollLimiter.take(source);
          } catch (error) {
            await service.auditRefusal(caller, 'Enroll', error);
            throw error;
          }
          return service.enroll(caller, { joinToken: text(r.joinToken), csr: bytes(r.csr), ttlSeconds: number(r.ttlSeconds) });
        },
        false,
      ),
      GetTrustBundle: wrap('GetTrustBundle', () => Promise.resolve(service.trustBundle()), false),
    });
    server.addService(serviceOf('Certificates'), {
      Renew: wrap('Renew', (caller, r) => service.renew(caller, { csr: bytes(r.csr), ttlSeconds: number(r.ttlSeconds) }), true),
      Issue: wrap('Issue', (caller, r) => service.issue(caller, { csr: bytes(r.csr), spiffeId: text(r.spiffeId), ttlSeconds: number(r.ttlSeconds) }), true),
      Revoke: wrap('Revoke', (caller, r) => service.revoke(caller, { serial: text(r.serial), reason: reasonOf(text(r.reason)) }), true),
      GetCertificate: wrap('GetCertificate', async (caller, r) => certificateInfo(await service.getCertificate(caller, { serial: text(r.serial) }), true), true),
      ListCertificates: wrap(
        'ListCertificates',
        async (caller, r) => {
          const page = await service.listCertificates(caller, {
            spiffeId: text(r.spiffeId),
            profile: text(r.profile),
            validOnly: r.validOnly === true,
            pageSize: number(r.pageSize),
            pageToken: text(r.pageToken),
          });
          return { certificates: page.items.map((c) => certificateInfo(c, false)), nextPageToken: page.nextPageToken };
        },
        true,
      ),
      GetCrl: wrap('GetCrl', async (caller) => {
        const crl = await service.crl(caller);
        return { der: Buffer.from(crl.der), pem: crl.pem, number: crl.number, thisUpdateUnix: crl.thisUpdateUnix, nextUpdateUnix: crl.nextUpdateUnix };
      }, true),
    });
    server.addService(serviceOf('Administration'), {
      CreateJoinToken: wrap('CreateJoinToken', (caller, r) => service.createJoinToken(caller, { spiffeId: text(r.spiffeId), ttlSeconds: number(r.ttlSeconds) }), true),
      QueryAudit: wrap(
        'QueryAudit',
        async (caller, r) => {
          const page = await service.queryAudit(caller, {
            actor: text(r.actor),
            action: text(r.action),
            outcome: text(r.outcome),
            subject: text(r.subject),
            sinceUnix: number(r.sinceUnix),
            untilUnix: number(r.untilUnix),
            pageSize: number(r.pageSize),
            pageToken: text(r.pageToken),
          });
          return {
            entries: page.items.map((e) => ({ ...e, timeUnixMs: e.time.getTime(), detailsJson: JSON.stringify(e.details) })),
            nextPageToken: page.nextPageToken,
          };
        },
        true,
      ),
      ReloadPolicy: wrap('ReloadPolicy', (caller) => service.reloadPolicy(caller), true),
      ...(ca === undefined
        ? {}
        : {
            GetCaState: wrap('GetCaState', (caller) => ca.getCaState(caller), true),
            RollIntermediate: wrap('RollIntermediate', (caller) => ca.rollIntermediate(caller), true),
            RollTokenKey: wrap('RollTokenKey', (caller) => ca.rollTokenKey(caller), true),
          }),
    });
    server.addService(serviceOf('Tokens'), {
      IssueToken: wrap(
        'IssueToken',
        (caller, r) =>
          tokens.issueToken(caller, {
            audience: text(r.audience),
            scopes: Array.isArray(r.scopes) ? r.scopes.map(text) : [],
            ttlSeconds: number(r.ttlSeconds),
            bindToCertificate: r.bindToCertificate === true,
          }),
        true,
      ),
      GetJwks: wrap('GetJwks', () => Promise.resolve(tokens.jwks()), false),
    });
    server.addService(serviceOf('Rotation'), {
      Watch: (call: grpc.ServerWritableStream<Record<string, unknown>, Record<string, unknown>>) => {
        const requestId = randomUUID();
        const metadata = new grpc.Metadata();
        metadata.set(REQUEST_ID_HEADER, requestId);
        call.sendMetadata(metadata);
        let ended = false;
        // A function, not the variable: the stream may end while run() awaits.
        const isEnded = (): boolean => ended;
        let remove: (() => void) | null = null;
        const finish = (): void => {
          if (ended) return;
          ended = true;
          remove?.();
          call.end();
        };
        call.on('cancelled', finish);
        call.on('close', finish);
        const run = async (): Promise<void> => {
          const der = call.getAuthContext().sslPeerCertificate?.raw;
          let peer;
          try {
            peer = await peers.verify(der, clock.now());
          } catch (error) {
            await service.auditRefusal({ requestId, peer: null }, 'Watch', error);
            throw error;
          }
          if (isEnded()) return;
          remove = await rotation.watch({ requestId, peer }, {
            send: (event) => {
              if (!ended) call.write({ ...event, reason: ENUM_OF_REASON[event.reason] ?? 'REVOCATION_REASON_UNSPECIFIED' });
            },
            end: finish,
          });
          observer?.watchStarted(grpc.status.OK);
          logger.debug({ requestId, spiffeId: peer.spiffeId, serial: peer.serial }, 'watch stream open');
          if (isEnded()) remove();
        };
        run().catch((error: unknown) => {
          if (ended) return;
          ended = true;
          remove?.();
          // grpc-js turns an 'error' event of a server stream into its final status.
          const reply = toServiceError(error, requestId);
          observer?.watchStarted(reply.code);
          call.emit('error', reply);
        });
      },
      ForceRotate: wrap('ForceRotate', async (caller, r) => rotationReply(await rotation.forceRotate(caller, { selector: text(r.selector), all: r.all === true, reason: reasonOf(text(r.reason)) })), true),
      GetRotation: wrap('GetRotation', async (caller, r) => rotationReply(await rotation.getRotation(caller, { rotationId: text(r.rotationId) })), true),
    });
    const health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((name) => [name, 'SERVING' as const])));
    health.addToServer(server);
    new ReflectionService(withProtoComments(definition, [...PROTO_FILES, healthProtoPath], [PROTO_DIR])).addToServer(server);

    const provider = new IdentityProvider(options.identity);
    const credentials = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(options.listen, credentials, (error, bound) => {
        if (error === null) resolve(bound);
        else reject(error);
      });
    });
    logger.info({ listen: options.listen, port }, 'credbroker listening (TLS; mutual TLS per call)');
    return new BrokerServer(server, port, provider, health, () => {
      rotation.hub.close();
    });
  }

  /** Sets every health status (the overall one and each service's) to SERVING or NOT_SERVING. */
  setServing(serving: boolean): void {
    const status = serving ? 'SERVING' : 'NOT_SERVING';
    for (const service of HEALTH_SERVICES) this.health.setStatus(service, status);
  }

  /** Replaces the server certificate (renewal); new connections use it at once. */
  updateIdentity(identity: ServerIdentity): void {
    this.#provider.update(identity);
  }

  /** Stops accepting calls, lets running ones finish for up to `graceMs`, then forces. */
  async stop(graceMs = 10_000): Promise<void> {
    this.setServing(false);
    // Watch streams never end by themselves: end them so the drain waits only for unary calls.
    this.#beforeStop();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

const REASON_OF_ENUM: Readonly<Record<string, string>> = Object.freeze({
  REVOCATION_REASON_UNSPECIFIED: 'unspecified',
  REVOCATION_REASON_KEY_COMPROMISE: 'keyCompromise',
  REVOCATION_REASON_CA_COMPROMISE: 'caCompromise',
  REVOCATION_REASON_AFFILIATION_CHANGED: 'affiliationChanged',
  REVOCATION_REASON_SUPERSEDED: 'superseded',
  REVOCATION_REASON_CESSATION_OF_OPERATION: 'cessationOfOperation',
  REVOCATION_REASON_PRIVILEGE_WITHDRAWN: 'privilegeWithdrawn',
});

const ENUM_OF_REASON: Readonly<Record<string, string>> = Object.freeze(Object.fromEntries(Object.entries(REASON_OF_ENUM).map(([k, v]) => [v, k])));

function reasonOf(value: string): Parameters<BrokerService['revoke']>[1]['reason'] {
  return (REASON_OF_ENUM[value] ?? 'unspecified') as Parameters<BrokerService['revoke']>[1]['reason'];
}

function rotationReply(status: Awaited<ReturnType<RotationService['getRotation']>>): Record<string, unknown> {
  return { ...status, reason: ENUM_OF_REASON[status.reason] ?? 'REVOCATION_REASON_UNSPECIFIED' };
}

function certificateInfo(record: Awaited<ReturnType<BrokerService['getCertificate']>>, withPem: boolean): Record<string, unknown> {
  return {
    serial: record.serial,
    spiffeId: record.spiffeId,
    profile: record.profile,
    notBeforeUnix: Math.floor(record.notBefore.getTime() / 1000),
    notAfterUnix: Math.floor(record.notAfter.getTime() / 1000),
    issuedAtUnix: Math.floor(record.issuedAt.getTime() / 1000),
    sha256: record.sha256,
    renewedFrom: record.renewedFrom ?? '',
    revokedAtUnix: record.revokedAt === null ? 0 : Math.floor(record.revokedAt.getTime() / 1000),
    revocationReason: record.revocationReason === null ? 'REVOCATION_REASON_UNSPECIFIED' : (ENUM_OF_REASON[record.revocationReason] ?? 'REVOCATION_REASON_UNSPECIFIED'),
    certificatePem: withPem ? pemOfDer(record.der) : '',
  };
}

function pemOfDer(der: Uint8Array): string {
  const base64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${base64.replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}
