/**
 * Access tokens (DESIGN.md "Tokens"): minting through a Signer, JWK Sets, and verification for
 * consuming services.
 */
export * from './token-issuer.js';
export * from './token-verifier.js';
export * from './jwks-cache.js';
export { TOKEN_VERIFICATION_ERROR_CODES, TokenVerificationError, type TokenVerificationErrorCode } from './token-verification-error.js';
export {
  certificateDerFromPem,
  certificateSha256,
  certificateThumbprint,
  certificateThumbprintFromPem,
  jwkThumbprint,
  jwksJson,
  jwksOf,
  publicJwkOf,
  type JwkHolder,
} from './jwks.js';
export { KeyRing, TOKEN_ALGORITHMS, isTokenAlgorithm, type VerificationKey } from './key-ring.js';
