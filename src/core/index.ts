/** Errors, time, randomness, secrets and durations: the base every module stands on. */
export * from './errors.js';
export * from './clock.js';
export * from './scheduler.js';
export * from './random.js';
export * from './secret.js';
export * from './duration.js';
export * from './signer.js';
export * from './software-signer.js';
export * from './logger.js';
export * from './redact.js';
export * from './revocation-reason.js';
export * from './ip-address.js';
