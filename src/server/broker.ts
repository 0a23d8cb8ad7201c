/**
 * `credbroker serve` assembled: HSM token and signers, CA certificates, store, policy, audit
 * log and checkpoints, peer verification with a revocation cache, the server identity and its
 * renewal, the gRPC server and the Prometheus metrics listener. The CLI calls
 * {@link startBroker} with the system clock and randomness; the e2e tests call it in process
 * with their own.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import * as x509 from '@peculiar/x509';
import { BrokerError, parseDurationMs, silentLogger, type Clock, type Logger, type RandomSource, type Secret } from '../core/index.js';
import { brokerConfigSchema, loadConfigFile, metricsConfigSchema, serverConfigSchema, type BrokerConfig } from '../config/index.js';
import { HsmSigner, HsmToken, hsmTokenOptions } from '../hsm/index.js';
import { PolicyHolder } from '../policy/index.js';
import { AuditCheckpointer, AuditLog } from '../audit/index.js';
import type { Store } from '../store/index.js';
import { BrokerMetrics } from './broker-metrics.js';
import { BrokerService, type IssuingCa } from './broker-service.js';
import { BrokerServer } from './grpc-server.js';
import { TokenIssuer } from '../tokens/index.js';
import { Decisions } from './decisions.js';
import { HealthMonitor } from './health-monitor.js';
import { MetricsListener } from './metrics-listener.js';
import { openStore } from './open-store.js';
import { PeerVerifier } from './peer-verifier.js';
import { RevocationPoller } from './revocation-poller.js';
import { RotationService } from './rotation-service.js';
import { TokenService } from './token-service.js';
import { ServerIdentityRenewer, issueServerIdentity } from './server-identity.js';
import { CaService } from './ca-service.js';
import { IntermediateRollover } from './intermediate-rollover.js';
import { loadIntermediate } from './load-intermediate.js';
import { RolloverStateFile } from './rollover-state-file.js';
import { TokenKeyRollover } from './token-key-rollover.js';

/** What {@link startBroker} needs besides the config. */
export interface BrokerDependencies {
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly logger?: Logger;
  /** The online token's user PIN, read by the caller from the config's secret source. */
  readonly pin: Secret;
  /**
   * The PostgreSQL password, read by the caller from `store.password` (like the PIN); absent for
   * a SQLite store or a login that needs none.
   */
  readonly storePassword?: Secret;
  /** The config file's path: relative paths in it are relative to its folder. */
  readonly configPath: string;
}

/** A running broker. */
export interface RunningBroker {
  readonly port: number;
  readonly server: BrokerServer;
  readonly service: BrokerService;
  readonly tokens: TokenService;
  readonly rotation: RotationService;
  readonly store: Store;
  readonly policy: PolicyHolder;
  readonly checkpointer: AuditCheckpointer;
  /** The health checks (HSM self-test, intermediate expiry) behind grpc.health.v1. */
  readonly health: HealthMonitor;
  readonly token: HsmToken;
  readonly trustDomain: string;
  /** The broker's metrics (its own registry, also when the listener is disabled). */
  readonly metrics: BrokerMetrics;
  /** Port of the `/metrics` listener; null when `metrics.enabled` is false. */
  readonly metricsPort: number | null;
  /** Re-reads the policy (SIGHUP); a bad file keeps the old policy. */
  reloadPolicy(): ReturnType<PolicyHolder['reload']>;
  /** The intermediates' lifecycle (prepared, active, retiring, retired). */
  readonly intermediates: IntermediateRollover;
  /** The token-signing keys' roll-over; null without a tokens section. */
  readonly tokenKeys: TokenKeyRollover | null;
  /** GetCaState and the early roll-overs. */
  readonly ca: CaService;
  /**
   * Re-reads `ca.intermediates` and `tokens.nextKey` from the config file (SIGHUP): new
   * intermediates are prepared and a new next token key published at once. Resolves to how
   * many were new.
   * @throws ConfigError/BrokerError when the file or a new key is unusable (nothing changes)
   */
  reloadIntermediates(): Promise<number>;
  /** Drains running calls (up to the configured timeout), signs a last checkpoint, closes everything. */
  stop(): Promise<void>;
}

/**
 * Starts the broker described by `config`.
 * @throws ConfigError/BrokerError naming what is missing or wrong
 */
export async function startBroker(config: BrokerConfig, dependencies: BrokerDependencies): Promise<RunningBroker> {
  const { clock, random, pin } = dependencies;
  const logger = dependencies.logger ?? silentLogger;
  const base = dirname(resolve(dependencies.configPath));
  const path = (value: string): string => (isAbsolute(value) ? value : resolve(base, value));
  const { ca: caConfig, audit: auditConfig, policy: policyPath } = config;
  const server = config.server ?? serverConfigSchema.parse({});
  const storeConfig = config.store ?? { kind: 'sqlite' as const, path: './credbroker.db' };
  const metricsConfig = config.metrics ?? metricsConfigSchema.parse({});
  const missing = [caConfig === undefined ? 'ca' : '', auditConfig === undefined ? 'audit' : '', policyPath === undefined ? 'policy' : ''].filter((m) => m !== '');
  if (caConfig === undefined || auditConfig === undefined || policyPath === undefined) {
    throw new BrokerError('invalid', { code: 'config.serve_sections', publicMessage: `credbroker serve needs the config sections: ${missing.join(', ')} (see the README's configuration reference)` });
  }

  const policy = PolicyHolder.load(path(policyPath));
  const roots = caConfig.roots.map((file) => new x509.X509Certificate(readFileSync(path(file))));
  const crossCertificates = caConfig.crossCertificates.map((file) => new x509.X509Certificate(readFileSync(path(file))));
  const intermediate = new x509.X509Certificate(readFileSync(path(caConfig.intermediateCertificate)));
  if (policy.current.trustDomain !== trustDomainOf(intermediate)) {
    throw new BrokerError('invalid', {
      code: 'config.trust_domain',
      publicMessage: `the policy's trust domain ${policy.current.trustDomain} is not the intermediate's (${trustDomainOf(intermediate)})`,
    });
  }

  const metrics = new BrokerMetrics({ clock, logger });
  const token = await HsmToken.open({ ...hsmTokenOptions(config.hsm, pin), random, logger, signObserver: metrics });
  const stack: (() => Promise<void> | void)[] = [() => token.close()];
  const unwind = async (): Promise<void> => {
    for (const close of stack.reverse()) await close();
  };
  try {
    const signer = await HsmSigner.create(token, caConfig.intermediateKey);
    if (!Buffer.from(intermediate.publicKey.rawData).equals(signer.publicKey.export({ format: 'der', type: 'spki' }))) {
      throw new BrokerError('invalid', { code: 'config.intermediate_key', publicMessage: `key "${caConfig.intermediateKey}" is not the key of ${caConfig.intermediateCertificate}` });
    }
    const auditSigner = await HsmSigner.create(token, auditConfig.key);
    const tokensConfig = config.tokens;
    const tokenSigner = tokensConfig === undefined ? null : await HsmSigner.create(token, tokensConfig.key);
    const tokenIssuer =
      tokensConfig === undefined || tokenSigner === null
        ? null
        : await TokenIssuer.create({ signer: tokenSigner, issuer: tokensConfig.issuer ?? `spiffe://${policy.current.trustDomain}/credbroker`, random });
    const trustDomain = policy.current.trustDomain;
    const stateStore = new RolloverStateFile(path(caConfig.stateFile));
    const rolloverState = stateStore.load();
    // Set once the Watch hub exists: every change of the bundle is pushed to agents.
    let bundleChanged: () => void = () => undefined;
    const loadListed = (listed: readonly { key: string; certificate: string }[]): Promise<Awaited<ReturnType<typeof loadIntermediate>>[]> =>
      Promise.all(listed.map((entry) => loadIntermediate(token, entry.key, path(entry.certificate), roots, trustDomain)));
    const intermediates = new IntermediateRollover(
      {
        intermediates: [{ keyLabel: caConfig.intermediateKey, certificate: intermediate, signer }, ...(await loadListed(caConfig.intermediates))],
        roots,
        crossCertificates,
        trustDomain,
        schedule: { prepareAtFraction: caConfig.prepareAtFraction, activateAtFraction: caConfig.activateAtFraction },
        maxLeafTtlMs: () => Math.max(policy.current.certificates.maxTtlMs, parseDurationMs(server.certificateTtl)),
        state: stateStore,
        loaded: rolloverState,
        logger,
        onBundleChanged: () => {
          bundleChanged();
        },
      },
      clock.now(),
    );
    const ca = (): IssuingCa => intermediates.current(clock.now());
    const nextTokenSigner = tokensConfig?.nextKey === undefined ? null : await HsmSigner.create(token, tokensConfig.nextKey);
    const tokenKeys =
      tokensConfig === undefined || tokenIssuer === null
        ? null
        : new TokenKeyRollover(
            {
              current: { keyLabel: tokensConfig.key, issuer: tokenIssuer },
              next: nextTokenSigner === null || tokensConfig.nextKey === undefined ? null : { keyLabel: tokensConfig.nextKey, issuer: await TokenIssuer.create({ signer: nextTokenSigner, issuer: tokenIssuer.issuer, random }) },
              publishForMs: parseDurationMs(tokensConfig.nextKeyPublishFor),
              state: stateStore,
              loaded: rolloverState,
              logger,
            },
            clock.now(),
          );

    const store = await openStore(storeConfig, { clock, logger, resolvePath: path, password: dependencies.storePassword ?? null });
    stack.push(() => store.close());
    const auditLog = new AuditLog();
    const checkpointer = new AuditCheckpointer(store, auditSigner, clock, {
      everyEntries: auditConfig.checkpointEveryEntries,
      everyMs: parseDurationMs(auditConfig.checkpointEvery),
    });

    const revoked = new Set((await store.transaction((tx) => tx.listRevokedUnexpired(clock.now()))).map((c) => c.serial));
    const peers = new PeerVerifier(() => ({ roots, intermediates: intermediates.trusted(clock.now()), trustDomain, isRevoked: (serial) => revoked.has(serial) }));
    const decisions = new Decisions({ store, audit: auditLog, policy, clock, logger });
    let service: BrokerService | null = null;
    const onRevoked = (serial: string): void => {
      revoked.add(serial);
      rotation.hub.endSerial(serial);
      service?.forgetCrl();
    };
    const rotation = new RotationService({ decisions, clock, random, trustDomain: () => trustDomain, onRevoked, observer: metrics });
    if (storeConfig.kind === 'postgres') {
      // Other brokers revoke too: learn their revocations within one interval (revocation-poller.ts).
      const poller = new RevocationPoller({ store, clock, logger, isKnown: (serial) => revoked.has(serial), onRevoked, intervalMs: parseDurationMs(storeConfig.revocationPollInterval) });
      poller.start();
      stack.push(() => {
        poller.stop();
      });
    }
    service = new BrokerService({
      store,
      audit: auditLog,
      policy,
      ca,
      clock,
      random,
      logger,
      decisions,
      onRevoked,
      onRenewed: (tx, caller, oldSerial, renewed) => rotation.onRenewed(tx, caller, oldSerial, renewed),
      onIssued: (certificate) => {
        intermediates.noteIssued(certificate.issuerSerial, certificate.notAfter);
        metrics.certificateIssued(certificate);
      },
    });
    const tokens = new TokenService({
      decisions,
      policy,
      issuer: () => tokenKeys?.issuer(clock.now()) ?? null,
      clock,
      onIssued: (issued) => {
        if (issued.expiresAt !== undefined) tokenKeys?.noteIssued(issued.expiresAt);
        metrics.tokenIssued(issued);
      },
      ...(tokenKeys === null ? {} : { published: () => tokenKeys.jwks(clock.now()).keys }),
    });
    metrics.attach({ store, hub: rotation.hub, token, ca, caWarnings: () => (intermediates.warning(clock.now()) === null ? 0 : 1) });
    // Bound before the gRPC port, so that a metrics address in use stops the start before any call is served.
    const metricsListener = metricsConfig.enabled ? await MetricsListener.start({ listen: metricsConfig.listen, source: metrics.registry, logger }) : null;
    if (metricsListener !== null) stack.push(() => metricsListener.close());

    const spec = { dnsNames: server.dnsNames, ipAddresses: server.ipAddresses, ttlMs: parseDurationMs(server.certificateTtl) };
    const initial = await issueServerIdentity(ca(), spec, clock.now(), random);
    const caService = new CaService({ decisions, intermediates, tokenKeys, clock });
    const grpcServer = await BrokerServer.start({ service, tokens, rotation, peers, identity: initial.identity, clock, listen: server.listen, enrollRateLimit: server.enrollRateLimit, logger, observer: metrics, ca: caService });
    stack.push(() => grpcServer.stop(parseDurationMs(server.drainTimeout)));
    const renewer = new ServerIdentityRenewer(initial, (now) => issueServerIdentity(ca(), spec, now, random), (next) => {
      grpcServer.updateIdentity(next.identity);
    }, clock, logger);
    renewer.start();
    stack.push(() => {
      renewer.stop();
    });
    bundleChanged = (): void => {
      // The listener offers the new CA list at once; agents hear of it on their Watch streams.
      grpcServer.updateIdentity({ ...renewer.current.identity, clientCaPem: caCertificatesPem(ca()) });
      rotation.trustBundleChanged();
    };
    const rolloverTimer = setInterval(() => {
      intermediates.tick(clock.now());
      tokenKeys?.tick(clock.now());
    }, parseDurationMs(caConfig.rolloverCheckInterval));
    rolloverTimer.unref();
    stack.push(() => {
      clearInterval(rolloverTimer);
    });
    const health = new HealthMonitor({
      token,
      signers: [
        { label: caConfig.intermediateKey, signer },
        { label: auditConfig.key, signer: auditSigner },
        ...(tokensConfig === undefined || tokenSigner === null ? [] : [{ label: tokensConfig.key, signer: tokenSigner }]),
      ],
      intermediateNotAfter: () => ca().intermediate.notAfter,
      clock,
      random,
      logger,
      setServing: (serving) => {
        grpcServer.setServing(serving);
      },
      intervalMs: parseDurationMs(server.healthCheckInterval),
      expiryMarginMs: parseDurationMs(server.intermediateExpiryMargin),
    });
    await health.start();
    stack.push(() => {
      health.stop();
    });
    checkpointer.start();
    stack.push(async () => {
      checkpointer.stop();
      await checkpointer.flush(clock.now()).catch(() => null);
    });
    policy.on('rejected', (error: unknown) => {
      logger.error({ error: String(error) }, 'policy reload refused; the previous policy stays in force');
    });

    return {
      port: grpcServer.port,
      server: grpcServer,
      service,
      tokens,
      rotation,
      store,
      policy,
      checkpointer,
      health,
      token,
      trustDomain,
      metrics,
      metricsPort: metricsListener?.port ?? null,
      reloadPolicy: () => policy.reload(),
      intermediates,
      tokenKeys,
      ca: caService,
      reloadIntermediates: async () => {
        const reloaded = loadConfigFile(dependencies.configPath, brokerConfigSchema);
        const added = intermediates.add(await loadListed(reloaded.ca?.intermediates ?? []), clock.now());
        const nextKey = reloaded.tokens?.nextKey;
        if (tokenKeys === null || tokenIssuer === null || nextKey === undefined) return added;
        const nextIssuer = await TokenIssuer.create({ signer: await HsmSigner.create(token, nextKey), issuer: tokenIssuer.issuer, random });
        return added + (tokenKeys.setNext({ keyLabel: nextKey, issuer: nextIssuer }, clock.now()) ? 1 : 0);
      },
      stop: unwind,
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}

/** Roots and every published intermediate (PEM): the client CAs the listener names. */
function caCertificatesPem(ca: IssuingCa): string {
  return [...ca.roots, ...(ca.intermediates ?? [ca.intermediate])].map((c) => `${c.toString('pem')}\n`).join('');
}

/** The trust domain an intermediate is constrained to: the host of its SPIFFE ID SAN. */
function trustDomainOf(intermediate: x509.X509Certificate): string {
  const san = intermediate.getExtension(x509.SubjectAlternativeNameExtension);
  const uri = san?.names.items.find((name) => name.type === 'url')?.value ?? '';
  return /^spiffe:\/\/([^/]+)/.exec(uri)?.[1] ?? '';
}
