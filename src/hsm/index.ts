/** PKCS#11: module, slots, login, session pool, keys and the HSM Signer. Knows nothing of X.509. */
export * from './hsm-error.js';
export * from './hsm-signer.js';
export * from './hsm-token.js';
export * from './key-spec.js';
export * from './pkcs11-library.js';
export * from './slots.js';
export * from './token-admin.js';
export * from './hsm-token-options.js';
