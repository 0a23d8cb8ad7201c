/**
 * Opens the store a broker config names: the SQLite file, or the shared PostgreSQL database. The
 * composition root (the CLI, or a test) reads the PostgreSQL password from its secret source
 * first, as it reads the HSM PIN, and passes it in: this module never touches secret sources.
 */
import { readFileSync } from 'node:fs';
import { BrokerError, parseDurationMs, type Clock, type Logger, type Secret } from '../core/index.js';
import type { StoreConfig } from '../config/index.js';
import { PostgresStore, SqliteStore, type Store } from '../store/index.js';

/** What {@link openStore} needs besides the config. */
export interface OpenStoreOptions {
  readonly clock: Clock;
  readonly logger?: Logger;
  /** Makes relative paths of the config absolute (relative to the config file's folder). */
  readonly resolvePath: (path: string) => string;
  /** The PostgreSQL password, read from `store.password`; null when the config names none. */
  readonly password: Secret | null;
  /** Open without migrating, for reading only (offline verification, export). Default false. */
  readonly readOnly?: boolean;
}

/**
 * Opens (and migrates) the store.
 * @throws BrokerError from {@link SqliteStore.open} / {@link PostgresStore.open}; invalid
 *   `config.store_password` when a postgres config names a password source but none was read;
 *   invalid `config.store_ca` when the TLS CA file cannot be read
 */
export async function openStore(config: StoreConfig, options: OpenStoreOptions): Promise<Store> {
  const readOnly = options.readOnly === true;
  if (config.kind === 'sqlite') return SqliteStore.open(options.resolvePath(config.path), { clock: options.clock, readOnly });
  if (config.password !== undefined && options.password === null) {
    throw new BrokerError('invalid', { code: 'config.store_password', publicMessage: 'store.password names a secret source, but the password was not read from it' });
  }
  let ca: string | undefined;
  if (config.ssl?.ca !== undefined) {
    const file = options.resolvePath(config.ssl.ca);
    try {
      ca = readFileSync(file, 'utf8');
    } catch (error) {
      throw new BrokerError('invalid', { code: 'config.store_ca', publicMessage: `cannot read store.ssl.ca ${file}: ${error instanceof Error ? error.message : String(error)}`, cause: error });
    }
  }
  const tls = config.ssl === undefined ? undefined : { ...(ca === undefined ? {} : { ca }), ...(config.ssl.servername === undefined ? {} : { servername: config.ssl.servername }) };
  return PostgresStore.open(
    {
      host: config.host,
      port: config.port,
      database: config.database,
      user: config.user,
      password: options.password,
      poolSize: config.poolSize,
      ...(tls === undefined ? {} : { tls }),
    },
    { clock: options.clock, readOnly, lockTimeoutMs: parseDurationMs(config.lockTimeout), ...(options.logger === undefined ? {} : { logger: options.logger }) },
  );
}
