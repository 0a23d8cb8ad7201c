/**
 * The error of a configuration that cannot be used: every problem at once, each with the dotted
 * path of the field it is about, so an operator fixes the whole file in one go.
 */
import { BrokerError } from '../core/index.js';
import { describeOsError } from './os-error.js';

/** One thing wrong with a configuration. */
export interface ConfigProblem {
  /**
   * Dotted path of the field, with `[i]` for list items (e.g. `hsm.pin.fd`,
   * `policy.entries[2].ttl`); empty for a problem with the whole file (syntax, unreadable).
   */
  readonly path: string;
  /** What is wrong and the expected form, e.g. `expected an integer >= 1, got 0`. */
  readonly message: string;
  /** 1-based line in the source text, for YAML syntax problems. */
  readonly line?: number;
  /** 1-based column in the source text, for YAML syntax problems. */
  readonly column?: number;
}

/** Options of a {@link ConfigError}. */
export interface ConfigErrorOptions {
  /** The error this one wraps (an OS error, a YAML error). */
  readonly cause?: unknown;
  /** Replaces the generated message (used when the file could not be read at all). */
  readonly message?: string;
}

/**
 * A configuration that is unreadable, not valid YAML, or does not match its schema.
 * Kind `invalid`, code `config.invalid`; `problems` lists every problem found and the message
 * lists them all, one per line, after the name of the file.
 */
export class ConfigError extends BrokerError {
  override readonly name: string = 'ConfigError';
  /** The file (or other source name) the configuration came from. */
  readonly source: string;
  /** Every problem found, in document order where known. Never empty. */
  readonly problems: readonly ConfigProblem[];

  /**
   * @param source file path or other name of the configuration, used in the message
   * @param problems what is wrong; an empty list is itself reported as a problem
   */
  constructor(source: string, problems: readonly ConfigProblem[], options: ConfigErrorOptions = {}) {
    const listed: readonly ConfigProblem[] = Object.freeze(
      (problems.length > 0 ? problems : [{ path: '', message: 'invalid configuration' }]).map((p) =>
        Object.freeze({ ...p }),
      ),
    );
    const message = options.message ?? formatConfigProblems(source, listed);
    super('invalid', {
      code: 'config.invalid',
      publicMessage: message,
      logMessage: message,
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
    this.source = source;
    this.problems = listed;
  }

  /** The error for a configuration file that cannot be read: names the file and the OS reason. */
  static unreadable(file: string, cause: unknown): ConfigError {
    const reason = describeOsError(cause);
    return new ConfigError(file, [{ path: '', message: `cannot read the file: ${reason}` }], {
      cause,
      message: `cannot read configuration file ${file}: ${reason}`,
    });
  }
}

/**
 * Renders problems as the message of a {@link ConfigError}:
 * ```text
 * invalid configuration in /etc/credbroker/broker.yaml (2 problems):
 *   - hsm.sessions: expected an integer >= 1, got 0
 *   - hsm.colour: unknown key "colour"; allowed here: module, token, ...
 * ```
 */
export function formatConfigProblems(source: string, problems: readonly ConfigProblem[]): string {
  const count = `${problems.length} problem${problems.length === 1 ? '' : 's'}`;
  const lines = problems.map((p) => `  - ${p.path === '' ? p.message : `${p.path}: ${p.message}`}`);
  return [`invalid configuration in ${source} (${count}):`, ...lines].join('\n');
}
