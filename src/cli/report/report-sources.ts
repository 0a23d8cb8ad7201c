/**
 * Where `credbroker report` reads from: the broker's config file names the store and the policy
 * (relative paths against the config file's folder, as `credbroker serve` resolves them);
 * `--db` and `--policy` name them directly or override the config. `--audit-key` pins the audit
 * key's public half for the checkpoint signatures.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { BrokerError } from '../../core/index.js';
import { brokerConfigSchema, loadConfigFile } from '../../config/index.js';

/** The files a report reads. */
export interface ReportSources {
  /** The broker's SQLite database, absolute; null when neither `--db` nor a config names one. */
  readonly databasePath: string | null;
  /** The policy file, absolute; null when neither `--policy` nor the config names one. */
  readonly policyPath: string | null;
}

/** The source flags as commander gives them. */
export interface ReportSourceFlags {
  readonly config?: string | undefined;
  readonly db?: string | undefined;
  readonly policy?: string | undefined;
}

/**
 * Resolves the database and policy paths from the flags and, when given, the config file.
 * @throws ConfigError for a config file that cannot be read or breaks the schema
 */
export function resolveReportSources(flags: ReportSourceFlags): ReportSources {
  let databasePath = flags.db === undefined ? null : resolve(flags.db);
  let policyPath = flags.policy === undefined ? null : resolve(flags.policy);
  if (flags.config !== undefined) {
    const config = loadConfigFile(flags.config, brokerConfigSchema);
    const base = dirname(resolve(flags.config));
    const path = (value: string): string => (isAbsolute(value) ? value : resolve(base, value));
    databasePath ??= path(config.store?.path ?? './credbroker.db');
    if (config.policy !== undefined) policyPath ??= path(config.policy);
  }
  return { databasePath, policyPath };
}

/**
 * The path, or a usage error naming the flags that would give it.
 * @throws BrokerError invalid `cli.report_sources` (exit 2)
 */
export function requireSource(path: string | null, what: 'database' | 'policy'): string {
  if (path !== null) return path;
  throw new BrokerError('invalid', {
    code: 'cli.report_sources',
    publicMessage:
      what === 'database'
        ? 'no broker database: give --config broker.yaml (its store.path) or --db <file>'
        : 'no policy: give --config broker.yaml with a policy entry, or --policy <file>',
  });
}

export { readAuditPublicKey } from '../audit-key.js';
