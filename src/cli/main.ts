/**
 * The composition root: the only place that creates the system clock, randomness and logger,
 * and the `credbroker` command line.
 */
import 'reflect-metadata';
import { Command, CommanderError } from 'commander';
import { BrokerError, silentLogger, systemClock, systemRandom, systemScheduler, type Logger } from '../core/index.js';
import { agentCommand } from './agent-command.js';
import { refuseSecretsOnArgv } from './argv-guard.js';
import { auditCommand } from './audit-command.js';
import { ceremonyCommand } from './ceremony-command.js';
import { bootstrapCommand, enrollCommand } from './enroll-command.js';
import { joinTokenCommand } from './join-token-command.js';
import { hsmCommand } from './hsm-command.js';
import { createLogger } from './logger.js';
import { reportCommand } from './report-command.js';
import { serveCommand } from './serve-command.js';
import { processOutput, type Output } from './output.js';

/** Exit codes: 0 ok, 1 the command failed, 2 usage error. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Builds the program (exported for tests that want the help text). */
export function buildProgram(output: Output, logger: Logger): Command {
  const program = new Command('credbroker')
    .description('internal PKI and credential broker: HSM-held CA keys, short-lived certificates and tokens over mTLS gRPC')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeErr: (text) => {
        output.error(text.trimEnd());
      },
      writeOut: (text) => {
        output.line(text.trimEnd());
      },
    });
  program.addCommand(hsmCommand(output, logger));
  program.addCommand(ceremonyCommand(output, logger, systemClock, systemRandom));
  program.addCommand(serveCommand(output, () => createLogger(), systemClock, systemRandom));
  program.addCommand(enrollCommand(output));
  program.addCommand(joinTokenCommand(output));
  program.addCommand(agentCommand(output, () => createLogger(), systemClock, systemRandom, systemScheduler));
  program.addCommand(bootstrapCommand(output, systemClock, systemRandom));
  program.addCommand(auditCommand(output, systemClock));
  program.addCommand(reportCommand(output, systemClock));
  for (const command of program.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }
  return program;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[], output: Output = processOutput): Promise<number> {
  try {
    refuseSecretsOnArgv(argv);
    await buildProgram(output, silentLogger).parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 0; // --help, --version
      return EXIT_USAGE;
    }
    if (error instanceof BrokerError) {
      output.error(`credbroker: error: ${error.publicMessage}`);
      return error.code.startsWith('cli.') ? EXIT_USAGE : EXIT_FAILURE;
    }
    output.error(`credbroker: unexpected error: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT_FAILURE;
  }
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  process.exitCode = await main(process.argv.slice(2));
}
