/**
 * PKI: SPIFFE IDs, serials and validity, CSR checks, the root/intermediate/leaf certificate
 * profiles, CRLs, chain building and verification. Signs only through the core `Signer`
 * interface (via {@link SignerCrypto}), never through src/hsm.
 */
export * from './spiffe-id.js';
export * from './serial-number.js';
export * from './validity.js';
export * from './root-certificate.js';
export * from './cross-certificate.js';
export * from './intermediate-certificate.js';
export * from './leaf-profile.js';
export * from './leaf-certificate.js';
export * from './check-csr.js';
export * from './crl.js';
export * from './build-chain.js';
export * from './verify-chain.js';
export * from './spiffe-id-of-certificate.js';
export * from './public-key-type.js';
export * from './san-policy.js';
export * from './dns-name.js';
export * from './ip-address.js';
export * from './key-identifier.js';
export * from './key-usage.js';
export * from './oids.js';
export * from './issuer.js';
export * from './signer-crypto.js';
export * from './certificate-fields.js';
export * from './describe-certificate.js';
export * from './distinguished-name.js';
export * from './extension-values.js';
export * from './profile-extensions.js';
export * from './general-names.js';
export * from './name-constraints.js';
export * from './signed-data.js';
export * from './der-reader.js';
export * from './der-writer.js';
export * from './public-key-spki.js';
