/**
 * Why a token was refused, as a closed set of codes a consuming service can map to its own
 * answers (HTTP 401/403, gRPC UNAUTHENTICATED/PERMISSION_DENIED) without parsing messages.
 */

/** Why {@link TokenVerifier.verify} refused a token. */
export type TokenVerificationErrorCode =
  | 'malformed' // not a compact JWS, bad base64url/JSON, a required claim missing or mistyped
  | 'algorithm' // alg not ES256/ES384/EdDSA/RS256 (e.g. "none", HS256) or not the key's alg
  | 'unknown_kid' // no key with the header's kid, even after a (rate-limited) JWKS refresh
  | 'signature' // the signature does not verify
  | 'expired' // exp is past (beyond the clock tolerance)
  | 'not_yet_valid' // nbf or iat is in the future (beyond the clock tolerance)
  | 'issuer' // iss is not the expected broker
  | 'audience' // aud does not name this service
  | 'scope' // a required scope is missing
  | 'binding' // cnf x5t#S256 and the presented client certificate disagree or one is missing
  | 'too_long' // exp − iat above the verifier's maxTtlSeconds
  | 'type'; // header typ is not "at+jwt" (RFC 9068 §4)

/** Every {@link TokenVerificationErrorCode}, for exhaustive tables and tests. */
export const TOKEN_VERIFICATION_ERROR_CODES: readonly TokenVerificationErrorCode[] = Object.freeze([
  'malformed',
  'algorithm',
  'unknown_kid',
  'signature',
  'expired',
  'not_yet_valid',
  'issuer',
  'audience',
  'scope',
  'binding',
  'too_long',
  'type',
]);

/**
 * A refused token. The message says what was wrong and is safe to log: it never contains the
 * token (a bearer secret) nor its signature; values taken from the token (a kid, a claim) are
 * JSON-quoted and truncated.
 */
export class TokenVerificationError extends Error {
  override readonly name: string = 'TokenVerificationError';
  /** Machine-readable reason. */
  readonly code: TokenVerificationErrorCode;

  /**
   * @param code why the token was refused
   * @param message what was wrong, without the token itself
   */
  constructor(code: TokenVerificationErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Longest excerpt of an untrusted value that an error message quotes. */
const MAX_QUOTED_LENGTH = 64;

/** A value from an unauthenticated token, JSON-quoted and truncated for a log-safe message. */
export function quoteUntrusted(value: unknown): string {
  const text = typeof value === 'string' ? value : value === undefined ? 'undefined' : JSON.stringify(value);
  const cut = text.length > MAX_QUOTED_LENGTH ? `${text.slice(0, MAX_QUOTED_LENGTH)}…` : text;
  return JSON.stringify(cut);
}
