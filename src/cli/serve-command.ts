/**
 * `credbroker serve --config broker.yaml`: the broker. SIGTERM/SIGINT drain running calls and
 * stop; SIGHUP re-reads the policy (a bad file keeps the old one and says why) and the
 * config's `ca.intermediates` (new ones are prepared and published in the trust bundle).
 */
import { Command } from 'commander';
import { BrokerError, type Clock, type Logger, type RandomSource } from '../core/index.js';
import { DEFAULT_METRICS_LISTEN, brokerConfigSchema, loadConfigFile, parseListenAddress, readSecret } from '../config/index.js';
import { startBroker } from '../server/index.js';
import type { Output } from './output.js';

/** Builds the `serve` command. */
export function serveCommand(output: Output, makeLogger: () => Logger, clock: Clock, random: RandomSource): Command {
  return new Command('serve')
    .description('run the broker: mTLS gRPC API for enrollment, renewal, issuance, revocation and audit')
    .requiredOption('-c, --config <file>', 'broker config file (hsm, ca, server, store, policy, audit)')
    .action(async (flags: { config: string }) => {
      const logger = makeLogger();
      const config = loadConfigFile(flags.config, brokerConfigSchema);
      const pin = await readSecret(config.hsm.pin, { label: 'HSM user PIN' });
      const storePassword = config.store?.kind === 'postgres' && config.store.password !== undefined ? await readSecret(config.store.password, { label: 'PostgreSQL password' }) : undefined;
      const broker = await startBroker(config, { clock, random, logger, pin, configPath: flags.config, ...(storePassword === undefined ? {} : { storePassword }) });
      output.line(`credbroker: listening on ${config.server?.listen.replace(/:\d+$/, '') ?? '127.0.0.1'}:${broker.port} (trust domain ${broker.trustDomain})`);
      if (broker.metricsPort !== null) {
        const host = parseListenAddress(config.metrics?.listen ?? DEFAULT_METRICS_LISTEN)?.host ?? '127.0.0.1';
        output.line(`credbroker: metrics on http://${host.includes(':') ? `[${host}]` : host}:${broker.metricsPort}/metrics`);
      }
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          logger.info({ signal }, 'stopping: draining running calls');
          process.off('SIGHUP', reload);
          broker.stop().then(resolve, (error: unknown) => {
            logger.error({ error: String(error) }, 'error while stopping');
            resolve();
          });
        };
        const reload = (): void => {
          const result = broker.reloadPolicy();
          if (result.ok) logger.info({ sha256: result.policy.sha256 }, 'policy reloaded');
          else output.error(`credbroker: policy reload refused, the previous policy stays in force: ${result.error.publicMessage}`);
          broker.reloadIntermediates().then(
            (added) => {
              if (added > 0) logger.info({ added }, 'new intermediates prepared and published in the trust bundle');
            },
            (error: unknown) => {
              output.error(`credbroker: ca.intermediates reload refused, nothing changed: ${error instanceof BrokerError ? error.publicMessage : String(error)}`);
            },
          );
        };
        process.once('SIGTERM', () => {
          stop('SIGTERM');
        });
        process.once('SIGINT', () => {
          stop('SIGINT');
        });
        process.on('SIGHUP', reload);
      });
      output.line('credbroker: stopped');
    });
}
