/**
 * Configuration files, schema validation and secret sources (STYLE.md "Configuration and
 * secrets"). Imports only src/core and libraries.
 */
export { ConfigError, formatConfigProblems, type ConfigErrorOptions, type ConfigProblem } from './config-error.js';
export { deepFreeze, type DeepReadonly } from './deep-freeze.js';
export { parseConfig, type ParseConfigOptions } from './parse-config.js';
export { loadConfigFile } from './load-config-file.js';
export { configErrorMap, formatConfigPath, schemaProblems } from './schema-problems.js';
export {
  secretSource,
  secretSourceSchema,
  describeSecretSource,
  SECRET_SOURCE_KEYS,
  type SecretSource,
  type FileSecretSource,
  type FdSecretSource,
  type PromptSecretSource,
} from './secret-source.js';
export { SecretSourceError, MAX_SECRET_BYTES, type SecretSourceErrorCode } from './secret-source-error.js';
export { readSecret, type ReadSecretOptions } from './read-secret.js';
export type { PromptIo } from './prompt-io.js';
export {
  TerminalPromptIo,
  type TerminalInput,
  type TerminalOutput,
  type TerminalPromptIoOptions,
} from './terminal-prompt-io.js';
export {
  hsmConfigSchema,
  HSM_SIGN_MODES,
  DEFAULT_HSM_SESSIONS,
  MAX_HSM_SESSIONS,
  MAX_TOKEN_LABEL_BYTES,
  type HsmConfig,
} from './hsm-config.js';
export {
  DEFAULT_REVOCATION_POLL_INTERVAL,
  auditConfigSchema,
  brokerConfigSchema,
  caConfigSchema,
  postgresStoreConfigSchema,
  serverConfigSchema,
  sqliteStoreConfigSchema,
  storeConfigSchema,
  type BrokerConfig,
  type StoreConfig,
} from './broker-config.js';
export { durationSchema } from './duration-schema.js';
export {
  metricsConfigSchema,
  parseListenAddress,
  isLoopbackHost,
  DEFAULT_METRICS_LISTEN,
  type ListenAddress,
  type MetricsConfig,
} from './metrics-config.js';
