/**
 * `credbroker agent --config agent.yaml [--once]`: keeps a service's key and certificate in
 * files, enrolled with a join token (from a 0600 file or an fd named in the config, never argv
 * or the environment), renewed before expiry and at the broker's request (Rotation/Watch),
 * followed by the reload hook. `--once` enrolls or renews if needed, writes, and exits: 0 on
 * success, 1 with the reason otherwise. SIGTERM/SIGINT stop the daemon.
 */
import { dirname, resolve } from 'node:path';
import { Command } from 'commander';
import type { Clock, Logger, RandomSource, Scheduler } from '../core/index.js';
import { loadConfigFile } from '../config/index.js';
import { Agent, agentConfigSchema, agentSettings } from '../agent/index.js';
import type { Output } from './output.js';

/** Builds the `agent` command. */
export function agentCommand(output: Output, makeLogger: () => Logger, clock: Clock, random: RandomSource, scheduler: Scheduler): Command {
  return new Command('agent')
    .description('keep this service\'s key and certificate in files: enroll with a join token, renew before expiry and when the broker asks, run a reload hook')
    .requiredOption('-c, --config <file>', 'agent config file (broker, joinToken, output, renewal, reload, watch)')
    .option('--once', 'enroll or renew if needed, write the files and exit (0 on success)')
    .action(async (flags: { config: string; once?: boolean }) => {
      const logger = makeLogger();
      const config = loadConfigFile(flags.config, agentConfigSchema);
      const settings = agentSettings(config, dirname(resolve(flags.config)));
      const agent = await Agent.create(settings, { clock, scheduler, random, logger });
      if (flags.once === true) {
        try {
          const outcome = await agent.runOnce();
          const { identity } = outcome;
          const what = outcome.action === 'none' ? 'certificate still valid, not due for renewal' : outcome.action;
          output.line(`credbroker agent: ${what}: ${identity.spiffeId}, certificate ${identity.serial} valid until ${identity.notAfter.toISOString()}; files in ${settings.files.dir}`);
        } finally {
          await agent.stop();
        }
        return;
      }
      // Signals first: a SIGTERM that arrives while enrolling, or right after the "running" line,
      // stops the agent cleanly instead of killing it. The agent's timers keep the process
      // alive; the interval makes sure of it even between timers.
      const keepAlive = setInterval(() => undefined, 1 << 30);
      let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
      const stopped = new Promise<void>((resolvePromise) => {
        onSignal = (signal) => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          logger.info({ signal }, 'stopping');
          clearInterval(keepAlive);
          agent.stop().then(resolvePromise, (error: unknown) => {
            logger.error({ error: String(error) }, 'error while stopping');
            resolvePromise();
          });
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
      agent.events.on('enrolled', (identity) => {
        output.line(`credbroker agent: enrolled as ${identity.spiffeId}: certificate ${identity.serial} valid until ${identity.notAfter.toISOString()}`);
      });
      agent.events.on('renewed', (identity, info) => {
        output.line(`credbroker agent: renewed${info.forced ? ' (asked by the broker)' : ''}: certificate ${identity.serial} valid until ${identity.notAfter.toISOString()}`);
      });
      agent.events.on('needs-join-token', (message) => {
        output.error(`credbroker agent: ${message}`);
      });
      try {
        await agent.start();
      } catch (error) {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        clearInterval(keepAlive);
        throw error;
      }
      const identity = agent.identity;
      output.line(
        identity === null
          ? `credbroker agent: running; no certificate yet (retrying: ${agent.status().lastError ?? 'waiting'})`
          : `credbroker agent: running as ${identity.spiffeId}; certificate ${identity.serial} valid until ${identity.notAfter.toISOString()}; files in ${settings.files.dir}`,
      );
      await stopped;
      output.line('credbroker agent: stopped');
    });
}
