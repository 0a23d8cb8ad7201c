/**
 * The audit log of the store a broker config names (`credbroker audit verify|export
 * --store-config broker.yaml`): its SQLite file, opened read-only, or its PostgreSQL database,
 * read in one REPEATABLE READ snapshot in read-only sessions while brokers keep writing. The
 * PostgreSQL password is read from the config's secret source, as `serve` reads it.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { BrokerError, type Clock } from '../core/index.js';
import { brokerConfigSchema, loadConfigFile, readSecret } from '../config/index.js';
import { readAuditFromSqlite, type AuditLogSnapshot } from '../audit/index.js';
import { openStore } from '../server/index.js';
import { PostgresStore } from '../store/index.js';

/**
 * Opens the audit log of the store `configPath` names (default store: ./credbroker.db).
 * @throws ConfigError for a bad config; BrokerError from the store (unreachable, not credbroker's, …)
 */
export async function readAuditOfBrokerConfig(configPath: string, clock: Clock): Promise<AuditLogSnapshot> {
  const config = loadConfigFile(configPath, brokerConfigSchema);
  const base = dirname(resolve(configPath));
  const path = (value: string): string => (isAbsolute(value) ? value : resolve(base, value));
  const storeConfig = config.store ?? { kind: 'sqlite' as const, path: './credbroker.db' };
  if (storeConfig.kind === 'sqlite') return readAuditFromSqlite(path(storeConfig.path));
  const password = storeConfig.password === undefined ? null : await readSecret(storeConfig.password, { label: 'PostgreSQL password' });
  try {
    const store = await openStore(storeConfig, { clock, resolvePath: path, password, readOnly: true });
    try {
      if (!(store instanceof PostgresStore)) throw new BrokerError('internal', { code: 'cli.store_kind', publicMessage: 'internal error', logMessage: 'openStore gave no PostgresStore for kind postgres' });
      const snapshot = await store.readAuditSnapshot();
      return { entries: snapshot.entries, checkpoints: snapshot.checkpoints, close: () => Promise.resolve() };
    } finally {
      await store.close();
    }
  } finally {
    password?.dispose();
  }
}
