/**
 * `credbroker agent`: {@link AgentCore} plus files. At start it keeps the key and certificate
 * an earlier run wrote while they are valid, else enrolls with the join token (and deletes the
 * token file); after every enrollment, renewal and trust-bundle change it writes the files
 * atomically (key 0600) and runs the reload hook. The key is generated here and leaves the
 * process only into the 0600 key file (and the 0600 PKCS#12 file, if configured).
 */
import { readFileSync } from 'node:fs';
import { BrokerError, silentLogger, type Clock, type Logger, type RandomSource, type Scheduler, type Secret } from '../core/index.js';
import { readSecret } from '../config/index.js';
import type { AgentSettings } from './agent-config.js';
import { AgentCore, type AgentStatus, type IdentityChange, type OnceOutcome } from './agent-core.js';
import { GrpcBrokerTransport, type BrokerTransport } from './broker-transport.js';
import { loadIdentityFiles, writeIdentityFiles, writeTrustBundleFile } from './identity-files.js';
import { joinTokenSourceOf, type JoinTokenSource } from './join-token-source.js';
import { runReloadHook } from './reload-hook.js';
import type { ServiceIdentity } from './service-identity.js';

/** What the agent needs besides its settings (the CLI passes the system ones). */
export interface AgentDependencies {
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly random: RandomSource;
  readonly logger?: Logger;
  /** Replaces the gRPC transport (tests). */
  readonly transport?: BrokerTransport;
}

/** The agent's status: the core's, plus the reload hook's counters. */
export interface AgentDaemonStatus extends AgentStatus {
  readonly reloads: number;
  readonly reloadFailures: number;
}

/** The file-writing agent. */
export class Agent {
  /** The loop's events: 'enrolled', 'renewed', 'watching', 'retry', 'needs-join-token', 'failure', ... */
  readonly events: AgentCore;
  readonly settings: AgentSettings;
  readonly #core: AgentCore;
  readonly #pkcs12Password: Secret | undefined;
  readonly #logger: Logger;
  #reloads = 0;
  #reloadFailures = 0;

  private constructor(settings: AgentSettings, core: AgentCore, pkcs12Password: Secret | undefined, logger: Logger) {
    this.settings = settings;
    this.#logger = logger;
    this.#core = core;
    this.events = core;
    this.#pkcs12Password = pkcs12Password;
  }

  /**
   * Prepares the agent: reads the bootstrap trust bundle and the PKCS#12 password, checks a
   * join token file that is present (mode 0600), loads the files of an earlier run.
   * @throws BrokerError naming the file and the reason when the trust bundle cannot be read, or
   *   a secret (join token, PKCS#12 password) is unusable, e.g. `secret.file_mode` for a token
   *   file with mode 0644
   */
  static async create(settings: AgentSettings, dependencies: AgentDependencies): Promise<Agent> {
    const logger = dependencies.logger ?? silentLogger;
    let bootstrapPem: string;
    try {
      bootstrapPem = readFileSync(settings.broker.trustBundleFile, 'utf8');
    } catch (error) {
      throw new BrokerError('invalid', { code: 'agent.trust_bundle', publicMessage: `cannot read the broker trust bundle ${settings.broker.trustBundleFile}: ${error instanceof Error ? error.message : String(error)}`, cause: error });
    }
    if (!bootstrapPem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new BrokerError('invalid', { code: 'agent.trust_bundle', publicMessage: `the broker trust bundle ${settings.broker.trustBundleFile} holds no PEM certificate` });
    }
    let joinToken: JoinTokenSource | undefined;
    if (settings.joinToken !== undefined) {
      joinToken = joinTokenSourceOf(settings.joinToken);
      if ('file' in settings.joinToken) (await joinToken.take())?.dispose(); // a loose mode is a startup error, even when the token is not needed yet
    }
    const pkcs12 = settings.files.pkcs12;
    const pkcs12Password = pkcs12 === undefined ? undefined : await readSecret(pkcs12.password, { label: 'PKCS#12 password' });
    const files = { dir: settings.files.dir, key: settings.files.key, certificate: settings.files.certificate, chain: settings.files.chain, trustBundle: settings.files.trustBundle, ...(pkcs12 === undefined ? {} : { pkcs12: { path: pkcs12.path } }) };
    const loaded = loadIdentityFiles(files, logger);
    const now = dependencies.clock.now();
    const initial = loaded !== null && loaded.isValidAt(now) ? loaded : null;
    if (loaded !== null && initial === null) {
      logger.warn({ serial: loaded.serial, notAfter: loaded.notAfter.toISOString() }, 'the certificate of an earlier run is not valid now; enrolling with the join token');
    }
    const transport =
      dependencies.transport ??
      new GrpcBrokerTransport({ address: settings.broker.address, bootstrapTrustBundlePem: bootstrapPem, ...(settings.broker.serverName === undefined ? {} : { serverName: settings.broker.serverName }) });

    let agent: Agent | null = null;
    const onIdentity = async (identity: ServiceIdentity, change: IdentityChange): Promise<void> => {
      if (change === 'trust-bundle') writeTrustBundleFile(files, identity);
      else await writeIdentityFiles(files, identity, pkcs12Password);
      logger.info({ change, serial: identity.serial, dir: files.dir }, 'files written');
      if (agent !== null) await agent.#reload(change);
    };
    const core = new AgentCore({
      transport,
      clock: dependencies.clock,
      scheduler: dependencies.scheduler,
      random: dependencies.random,
      logger,
      keyType: settings.keyType,
      names: settings.names,
      ttlSeconds: settings.ttlSeconds,
      timing: settings.timing,
      watch: settings.watch,
      ...(joinToken === undefined ? {} : { joinToken }),
      initialIdentity: initial,
      onIdentity,
    });
    agent = new Agent(settings, core, pkcs12Password, logger);
    return agent;
  }

  /** Starts the loop (see AgentCore.start). @throws BrokerError when a join token is needed and missing or refused */
  start(): Promise<void> {
    return this.#core.start();
  }

  /** Enrolls or renews if needed, writes the files, and returns (`--once`). @throws BrokerError saying what failed */
  runOnce(): Promise<OnceOutcome> {
    return this.#core.runOnce();
  }

  /** Renews now (as on RENEW_NOW). */
  renewNow(): Promise<void> {
    return this.#core.renewNow();
  }

  /** Stops the loop and forgets the PKCS#12 password. */
  async stop(): Promise<void> {
    await this.#core.stop();
    this.#pkcs12Password?.dispose();
  }

  /** The current identity, or null before the first enrollment. */
  get identity(): ServiceIdentity | null {
    return this.#core.identity;
  }

  /** State, gauges and counters. */
  status(): AgentDaemonStatus {
    return Object.freeze({ ...this.#core.status(), reloads: this.#reloads, reloadFailures: this.#reloadFailures });
  }

  /** Runs the reload hook; a failure is logged and counted, never undoes the rotation (the files are in place). */
  async #reload(change: IdentityChange): Promise<void> {
    const action = this.settings.reload;
    if (action === undefined) return;
    try {
      await runReloadHook(action);
      this.#reloads++;
      this.#logger.info({ change }, 'reload hook ran');
    } catch (error) {
      this.#reloadFailures++;
      const failure = error instanceof BrokerError ? error : new BrokerError('unavailable', { code: 'agent.reload', publicMessage: String(error) });
      this.#logger.error({ change, error: failure.publicMessage }, 'the reload hook failed: the service may still use the old certificate');
      this.#core.emit('failure', failure, 'reload');
    }
  }
}
