/**
 * Secrets never come from the command line (DESIGN.md invariant 3): argv is visible to every
 * user in `ps` and /proc/<pid>/cmdline and lands in shell history. A flag that looks like it
 * carries a PIN, password or join token is answered with why, and what to use instead, before
 * anything else runs.
 */
import { BrokerError } from '../core/index.js';

const SECRET_FLAG = /^--?(?:(?:so-|user-|hsm-)?pin|password|passwd|pass|secret|join-token|token-value|so-pin-value|pin-value)(?:=.*)?$/i;

/** Environment variables we refuse to even look like we honour. */
const SECRET_ENV = /^CREDBROKER_.*(?:PIN|PASSWORD|SECRET|JOIN_TOKEN)/;

/**
 * Refuses argv that carries a secret and environment variables that pretend to.
 * @throws BrokerError `cli.secret_on_argv` / `cli.secret_in_env` (kind invalid)
 */
export function refuseSecretsOnArgv(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  for (const argument of argv) {
    if (argument === '--') break;
    if (SECRET_FLAG.test(argument)) {
      const flag = argument.split('=')[0] ?? argument;
      const stem = flag.replace(/^-+/, '').replace(/-value$/, '');
      throw new BrokerError('invalid', {
        code: 'cli.secret_on_argv',
        publicMessage:
          `${flag} is not accepted: a secret on the command line is visible to every user in ps and /proc/<pid>/cmdline and is kept in shell history. ` +
          `Give it as --${stem}-file PATH (a file with mode 0600), --${stem}-fd N (an inherited file descriptor) or --${stem}-prompt (asked without echo), ` +
          'or name a secret source in the config file.',
      });
    }
  }
  const variable = Object.keys(env).find((name) => SECRET_ENV.test(name));
  if (variable !== undefined) {
    throw new BrokerError('invalid', {
      code: 'cli.secret_in_env',
      publicMessage:
        `environment variable ${variable} is set, but credbroker never reads secrets from the environment (readable in /proc, inherited by every child). ` +
        'Unset it and use a 0600 file, a file descriptor or the prompt.',
    });
  }
}
