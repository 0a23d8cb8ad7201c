/** Persistence: the Store interface and its implementations. */
export * from './audit-records.js';
export * from './store.js';
export * from './pagination.js';
export * from './record-checks.js';
export * from './sqlite-migrations.js';
export * from './sqlite-store.js';
export * from './postgres-errors.js';
export * from './postgres-migrations.js';
export * from './postgres-store.js';
