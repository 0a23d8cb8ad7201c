/**
 * The three command-line forms of a secret source: `--NAME-file PATH`, `--NAME-fd N`,
 * `--NAME-prompt`. They name where the secret is, never the secret itself.
 */
import type { Command } from 'commander';
import { BrokerError, type Secret } from '../core/index.js';
import { readSecret, type SecretSource } from '../config/index.js';

/** Adds the three flags for the secret `name` (e.g. `pin`, `so-pin`) to a command. */
export function addSecretFlags(command: Command, name: string, description: string): Command {
  return command
    .option(`--${name}-file <path>`, `read the ${description} from a file (mode 0600 or stricter, owned by you)`)
    .option(`--${name}-fd <n>`, `read the ${description} from inherited file descriptor n (3 or higher)`)
    .option(`--${name}-prompt`, `ask for the ${description} on the terminal, without echo`);
}

/** The secret source the flags name, or undefined when none of them was given. */
export function secretSourceFromFlags(options: Record<string, unknown>, name: string, description: string): SecretSource | undefined {
  const key = name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
  const file = options[`${key}File`];
  const fd = options[`${key}Fd`];
  const prompt = options[`${key}Prompt`];
  const given = [file, fd, prompt].filter((value) => value !== undefined).length;
  if (given > 1) {
    throw new BrokerError('invalid', { code: 'cli.secret_source', publicMessage: `give the ${description} only once: --${name}-file, --${name}-fd or --${name}-prompt` });
  }
  if (typeof file === 'string') return { file };
  if (typeof fd === 'string') {
    const number = Number(fd);
    if (!Number.isInteger(number) || number < 3) {
      throw new BrokerError('invalid', { code: 'cli.secret_source', publicMessage: `--${name}-fd needs a file descriptor number of 3 or higher, got "${fd}"` });
    }
    return { fd: number };
  }
  if (prompt === true) return { prompt: `${description}: ` };
  return undefined;
}

/** Reads the secret named by the flags; fails saying which flags to use when none was given. */
export async function readSecretFromFlags(options: Record<string, unknown>, name: string, description: string): Promise<Secret> {
  const source = secretSourceFromFlags(options, name, description);
  if (source === undefined) {
    throw new BrokerError('invalid', {
      code: 'cli.secret_missing',
      publicMessage: `the ${description} is needed: give --${name}-file PATH, --${name}-fd N or --${name}-prompt`,
    });
  }
  return readSecret(source, { label: description });
}
