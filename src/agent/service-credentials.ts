/**
 * The client library: credbroker inside a service instead of next to it. The same enroll /
 * renew / watch loop as `credbroker agent` ({@link AgentCore}), with the key kept in memory,
 * and the current identity handed straight to the service's TLS:
 *
 * - grpc-js servers and channels through a certificate provider (each handshake uses the
 *   current key and certificate);
 * - node tls/https servers through `setSecureContext` on every rotation, and https clients
 *   through an Agent that makes each new connection with the current secure context;
 * - access tokens (Tokens/IssueToken over mTLS), cached per (audience, scopes) and fetched
 *   again at 3/4 of their lifetime;
 * - a token verifier for the broker's tokens, its keys fetched with Tokens/GetJwks.
 *
 * ```ts
 * const credentials = await ServiceCredentials.start({
 *   broker: { address: 'broker.internal:8443', trustBundlePem: readFileSync('root.pem', 'utf8') },
 *   joinToken: await readSecret({ file: '/run/secrets/join-token' }),
 * });
 * server.bindAsync(addr, credentials.grpcServerCredentials(), cb);
 * const client = new Client(peer, credentials.grpcChannelCredentials({ serverSpiffeId: 'spiffe://…/blur' }));
 * const token = await credentials.token('storage.source', ['media.source.read']);
 * ```
 */
import { once } from 'node:events';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { JSONWebKeySet } from 'jose';
import {
  BrokerError,
  SystemScheduler,
  silentLogger,
  systemClock,
  systemRandom,
  type Clock,
  type Logger,
  type RandomSource,
  type Scheduler,
  type Secret,
} from '../core/index.js';
import { JwksCache, TokenVerifier, type JwksCacheOptions, type TokenVerifierOptions } from '../tokens/index.js';
import { AgentCore, type AgentStatus } from './agent-core.js';
import { GrpcBrokerTransport, type BrokerTransport } from './broker-transport.js';
import type { CsrNames, ServiceKeyType } from './enroll.js';
import { IdentityCertificateProvider } from './identity-certificate-provider.js';
import { secretJoinToken, type JoinTokenSource } from './join-token-source.js';
import type { RenewalTiming } from './renewal-plan.js';
import { ServiceIdentity, type IdentityPems } from './service-identity.js';
import { TokenCache } from './token-cache.js';

/** Options of {@link ServiceCredentials.start}. */
export interface ServiceCredentialsOptions {
  readonly broker: {
    /** host:port of the broker. */
    readonly address: string;
    /** Name to verify in the broker's certificate (default: the host of `address`). */
    readonly serverName?: string;
    /** Roots that authenticate the broker at first contact (PEM). */
    readonly trustBundlePem: string;
  };
  /** The join token, needed when there is no valid identity yet (a Secret is handed out once and disposed after use). */
  readonly joinToken?: Secret | JoinTokenSource;
  /** An identity from before (e.g. files of an earlier run), used while valid. */
  readonly identity?: ServiceIdentity | IdentityPems;
  /** Type of each new key; default P-256. */
  readonly keyType?: ServiceKeyType;
  /** DNS names / IP addresses to ask for (policy must allow them); needed to serve TLS under a host name. */
  readonly names?: CsrNames;
  /** Requested certificate lifetime in seconds; default: the identity's policy default. */
  readonly ttlSeconds?: number;
  /** Renewal timing; defaults in DEFAULT_RENEWAL_TIMING (2/3 of the lifetime, 10 % jitter, 1 s … 60 s backoff). */
  readonly renewal?: Partial<RenewalTiming>;
  /** Keep a Rotation/Watch stream open for pushed renewals; default true. */
  readonly watch?: boolean;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** Default: real timers, unref'd (they never keep the service alive). */
  readonly scheduler?: Scheduler;
  /** Default: the OS CSPRNG. */
  readonly random?: RandomSource;
  readonly logger?: Logger;
  /** Replaces the gRPC transport (tests). */
  readonly transport?: BrokerTransport;
}

/** Token options: see Tokens/IssueToken in proto/credbroker/v1/tokens.proto. */
export interface TokenOptions {
  /** Requested lifetime in seconds; default: the identity's policy default (5 min). */
  readonly ttlSeconds?: number;
  /** Bind the token to this service's certificate (RFC 8705 cnf). */
  readonly bindToCertificate?: boolean;
}

/** How a channel checks the server it connects to. */
export interface ChannelCheckOptions {
  /**
   * The SPIFFE ID the server's certificate must carry (or a predicate on it). Replaces the host
   * name check, as SPIFFE peers are named by ID. Default: the usual host name check.
   */
  readonly serverSpiffeId?: string | ((spiffeId: string) => boolean);
}

/** A service's own credentials, kept current by the broker. */
export class ServiceCredentials {
  /** The loop's events ('enrolled', 'renewed', 'identity', 'watching', 'retry', 'failure', ...). */
  readonly events: AgentCore;
  readonly #core: AgentCore;
  readonly #transport: BrokerTransport;
  readonly #clock: Clock;
  readonly #provider: IdentityCertificateProvider;
  readonly #tokens: TokenCache;
  readonly #tlsServers = new Set<tls.Server>();
  #secureContext: { identity: ServiceIdentity; context: tls.SecureContext } | null = null;
  #lastSerial: string | null = null;

  private constructor(core: AgentCore, transport: BrokerTransport, clock: Clock, logger: Logger) {
    this.#core = core;
    this.events = core;
    this.#transport = transport;
    this.#clock = clock;
    this.#provider = new IdentityCertificateProvider(core.identity);
    this.#lastSerial = core.identity?.serial ?? null;
    this.#tokens = new TokenCache({ clock, fetch: (request) => transport.issueToken(this.identity, request) });
    core.on('identity', (identity) => {
      this.#provider.update(identity);
      this.#secureContext = null;
      if (identity.serial !== this.#lastSerial) this.#tokens.clear(); // bound tokens name the old certificate
      this.#lastSerial = identity.serial;
      for (const server of this.#tlsServers) {
        try {
          server.setSecureContext(this.secureContextOptions());
        } catch (error) {
          logger.error({ error: error instanceof Error ? error.message : String(error) }, 'a TLS server refused the new certificate');
        }
      }
    });
  }

  /**
   * Starts the loop and resolves once the service holds a valid identity (an initial one, or
   * one from enrolling with the join token; a broker that is down is retried with backoff).
   * @throws BrokerError when there is no valid identity and the join token is missing or refused
   *   (a new join token is needed), or the broker refuses the request as configured
   */
  static async start(options: ServiceCredentialsOptions): Promise<ServiceCredentials> {
    const clock = options.clock ?? systemClock;
    const logger = options.logger ?? silentLogger;
    const transport =
      options.transport ??
      new GrpcBrokerTransport({
        address: options.broker.address,
        bootstrapTrustBundlePem: options.broker.trustBundlePem,
        ...(options.broker.serverName === undefined ? {} : { serverName: options.broker.serverName }),
      });
    const initial = options.identity === undefined ? null : options.identity instanceof ServiceIdentity ? options.identity : ServiceIdentity.fromPems(options.identity);
    const joinToken = options.joinToken === undefined ? undefined : 'take' in options.joinToken ? options.joinToken : secretJoinToken(options.joinToken);
    const core = new AgentCore({
      transport,
      clock,
      scheduler: options.scheduler ?? new SystemScheduler({ unref: true }),
      random: options.random ?? systemRandom,
      logger,
      ...(options.keyType === undefined ? {} : { keyType: options.keyType }),
      ...(options.names === undefined ? {} : { names: options.names }),
      ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
      ...(options.renewal === undefined ? {} : { timing: options.renewal }),
      ...(options.watch === undefined ? {} : { watch: options.watch }),
      ...(joinToken === undefined ? {} : { joinToken }),
      initialIdentity: initial !== null && initial.isValidAt(clock.now()) ? initial : null,
    });
    const credentials = new ServiceCredentials(core, transport, clock, logger);
    const ready = waitForIdentity(core);
    ready.catch(() => undefined); // awaited below, unless start() fails first
    try {
      await core.start();
      await ready;
    } catch (error) {
      await core.stop();
      throw error;
    }
    return credentials;
  }

  /** The current identity. */
  get identity(): ServiceIdentity {
    const identity = this.#core.identity;
    if (identity === null) throw new BrokerError('unavailable', { code: 'agent.no_identity', publicMessage: 'no certificate yet' });
    return identity;
  }

  /** State, gauges and counters (see AgentStatus). */
  status(): AgentStatus {
    return this.#core.status();
  }

  /** Renews now with a new key (resolves when done; a failure is retried with backoff). */
  renewNow(): Promise<void> {
    return this.#core.renewNow();
  }

  /**
   * grpc-js server credentials on the current identity: peers must present a certificate that
   * chains to the trust bundle (unless `requireClientCertificate` is false). New handshakes use
   * each renewed certificate. Who the peer is: its SPIFFE ID in the certificate's URI SAN
   * (`call.getAuthContext().sslPeerCertificate`).
   */
  grpcServerCredentials(options: { requireClientCertificate?: boolean } = {}): grpc.ServerCredentials {
    return grpc.experimental.createCertificateProviderServerCredentials(this.#provider, this.#provider, options.requireClientCertificate ?? true);
  }

  /** grpc-js channel credentials on the current identity (mutual TLS), checking the server against the trust bundle. */
  grpcChannelCredentials(options: ChannelCheckOptions = {}): grpc.ChannelCredentials {
    const check = options.serverSpiffeId === undefined ? undefined : spiffeIdCheck(options.serverSpiffeId);
    return grpc.experimental.createCertificateProviderChannelCredentials(this.#provider, this.#provider, check === undefined ? {} : { checkServerIdentity: check });
  }

  /** Key, certificate chain and trust bundle for node's tls (a snapshot: contains the private key, keep it in process). */
  secureContextOptions(): tls.SecureContextOptions {
    const identity = this.identity;
    return { key: identity.privateKeyPem(), cert: identity.certificateChainPem, ca: identity.trustBundlePem };
  }

  /** A TLS secure context of the current identity (cached until the next rotation). */
  secureContext(): tls.SecureContext {
    const identity = this.identity;
    if (this.#secureContext?.identity !== identity) this.#secureContext = { identity, context: tls.createSecureContext(this.secureContextOptions()) };
    return this.#secureContext.context;
  }

  /**
   * Keeps a node tls/https server on the current identity: sets it now and after every
   * rotation (`server.setSecureContext`). Create the server with `requestCert: true` (and
   * `rejectUnauthorized: true`) for mutual TLS. Returns a function that stops the updates.
   */
  attachTlsServer(server: tls.Server): () => void {
    server.setSecureContext(this.secureContextOptions());
    this.#tlsServers.add(server);
    return () => {
      this.#tlsServers.delete(server);
    };
  }

  /**
   * An https.Agent whose every new connection presents the current certificate and trusts the
   * trust bundle. TLS session resumption is off, so a resumed session never carries an old
   * certificate. `options` are passed on (e.g. `keepAlive`).
   */
  httpsAgent(options: https.AgentOptions & ChannelCheckOptions = {}): https.Agent {
    const { serverSpiffeId, ...agentOptions } = options;
    const check = serverSpiffeId === undefined ? undefined : spiffeIdCheck(serverSpiffeId);
    const currentContext = (): tls.SecureContext => this.secureContext();
    class RotatingAgent extends https.Agent {
      override createConnection(connectOptions: https.RequestOptions, callback?: (error: Error | null, stream: Duplex) => void): Duplex | null | undefined {
        const withContext = { ...connectOptions, secureContext: currentContext(), ...(check === undefined ? {} : { checkServerIdentity: check }) } as https.RequestOptions;
        return super.createConnection(withContext, callback);
      }
    }
    return new RotatingAgent({ ...agentOptions, maxCachedSessions: 0 });
  }

  /**
   * An access token for `audience` with `scopes`, from the cache while younger than 3/4 of its
   * lifetime, else fetched with Tokens/IssueToken. A secret: send it only to its audience.
   * @throws BrokerError `denied` when policy does not grant it, `invalid` for a bad request,
   *   `unavailable` when the broker cannot be reached and no valid cached token exists
   */
  token(audience: string, scopes: readonly string[], options: TokenOptions = {}): Promise<string> {
    return this.#tokens.token({ audience, scopes, ...options });
  }

  /**
   * A verifier of the broker's tokens for a consuming service, its keys from Tokens/GetJwks
   * (refreshed as JwksCache decides). `issuer` defaults to the broker's default,
   * `spiffe://<trust domain>/credbroker`.
   */
  tokenVerifier(issuer?: string, options: Omit<TokenVerifierOptions, 'issuer' | 'jwks' | 'clock'> & Pick<JwksCacheOptions, 'refreshIntervalMs' | 'minRefreshIntervalMs' | 'retainRemovedKeysMs'> = {}): TokenVerifier {
    const { refreshIntervalMs, minRefreshIntervalMs, retainRemovedKeysMs, ...verifierOptions } = options;
    const cache = new JwksCache({
      clock: this.#clock,
      fetch: async () => JSON.parse((await this.#transport.jwks(this.#core.identity)).jwksJson) as JSONWebKeySet,
      ...(refreshIntervalMs === undefined ? {} : { refreshIntervalMs }),
      ...(minRefreshIntervalMs === undefined ? {} : { minRefreshIntervalMs }),
      ...(retainRemovedKeysMs === undefined ? {} : { retainRemovedKeysMs }),
    });
    return new TokenVerifier({ ...verifierOptions, issuer: issuer ?? `spiffe://${trustDomainOf(this.identity.spiffeId)}/credbroker`, jwks: cache, clock: this.#clock });
  }

  /** Stops renewing and watching and closes the broker connection. Servers and channels keep the last identity. */
  async close(): Promise<void> {
    this.#tlsServers.clear();
    this.#tokens.clear();
    await this.#core.stop();
  }
}

/** Resolves on the first identity; rejects when the loop says a new join token is needed or stops. */
function waitForIdentity(core: AgentCore): Promise<void> {
  if (core.identity !== null) return Promise.resolve();
  const controller = new AbortController();
  const identity = once(core, 'identity', { signal: controller.signal }).then(() => undefined);
  const needsToken = once(core, 'needs-join-token', { signal: controller.signal }).then(([message]) => {
    throw new BrokerError('unauthenticated', { code: 'agent.join_token_needed', publicMessage: String(message) });
  });
  const stopped = once(core, 'stopped', { signal: controller.signal }).then(() => {
    throw new BrokerError('unavailable', { code: 'agent.stopped', publicMessage: 'stopped before a certificate was obtained' });
  });
  const settled = Promise.race([identity, needsToken, stopped]).finally(() => {
    controller.abort();
  });
  // The losers reject with AbortError once aborted: nobody waits for them.
  for (const loser of [identity, needsToken, stopped]) loser.catch(() => undefined);
  return settled;
}

/**
 * A `checkServerIdentity` for tls and grpc-js that accepts a peer by its SPIFFE ID (the
 * certificate's one URI SAN) instead of its host name.
 */
export function spiffeIdCheck(expected: string | ((spiffeId: string) => boolean)): (host: string, certificate: tls.PeerCertificate) => Error | undefined {
  const accepts = typeof expected === 'string' ? (id: string) => id === expected : expected;
  return (_host, certificate) => {
    const uris = (certificate.subjectaltname ?? '')
      .split(', ')
      .filter((name) => name.startsWith('URI:'))
      .map((name) => name.slice(4));
    const [id] = uris;
    if (uris.length !== 1 || id === undefined || !id.startsWith('spiffe://')) return new Error(`the server certificate carries ${uris.length} URI SANs; expected exactly one SPIFFE ID`);
    return accepts(id) ? undefined : new Error(`the server's SPIFFE ID ${id} is not the one expected`);
  };
}

function trustDomainOf(spiffeId: string): string {
  return /^spiffe:\/\/([^/]+)/.exec(spiffeId)?.[1] ?? '';
}
