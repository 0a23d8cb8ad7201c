/** The hash-chained audit log: chaining and appending, signed checkpoints, offline verification. */
export * from './audit-chain.js';
export * from './audit-log.js';
export * from './audit-checkpointer.js';
export * from './audit-verify.js';
