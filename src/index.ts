/**
 * The credbroker library entry point. Services will get their client API here (issue 5); for
 * now it exposes the core types every module shares.
 */
export * from './core/index.js';
