/**
 * Verification of credbroker access tokens for consuming services (DESIGN.md: "verification
 * helpers in the library"): signature, algorithm, type, issuer, audience, time, lifetime,
 * scopes and certificate binding (RFC 9068 §4, RFC 8705 §3).
 *
 * Keys come from a JWK Set, selected and imported once by jose (`createLocalJWKSet`, see
 * {@link KeyRing}). The per-token path is synchronous apart from the key lookup: jose's
 * `jwtVerify` verifies through WebCrypto, which in Node runs every verification as a
 * thread-pool job (≈ 30 µs of hand-off on top of ≈ 70 µs of P-256 arithmetic) and adds its own
 * per-call work (algorithm set, key selection, claim set copy); together they hold one core to
 * 7–10k ES256 verifications/s, against ≈ 13k/s here (`scripts/bench/tokens-verify.ts`). Here each token costs one `crypto.verify` on an imported KeyObject
 * and the checks below, the same checks jwtVerify makes with `algorithms`, `typ`, `issuer`,
 * `audience`, `currentDate` and `clockTolerance` set, plus those jose does not make (scope,
 * lifetime cap, binding). Unit tests compare the two on good and bad tokens.
 */
import { timingSafeEqual } from 'node:crypto';
import type { JSONWebKeySet } from 'jose';
import { BrokerError, systemClock, verifySignature, type Clock, type SignatureAlgorithm } from '../core/index.js';
import { JwksCache } from './jwks-cache.js';
import { certificateDerFromPem, certificateSha256 } from './jwks.js';
import { KeyRing, isTokenAlgorithm, type VerificationKey } from './key-ring.js';
import { ACCESS_TOKEN_TYPE } from './token-issuer.js';
import { TokenVerificationError, quoteUntrusted } from './token-verification-error.js';

/** Where a verifier gets its keys: a fixed JWK Set, or a {@link JwksCache} kept fresh from the broker. */
export type JwksSource = JSONWebKeySet | JwksCache;

/** Default {@link TokenVerifierOptions.clockToleranceSeconds}. */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;
/** Default {@link TokenVerifierOptions.maxTtlSeconds}: the broker's hard cap of 1 h. */
export const DEFAULT_MAX_TOKEN_TTL_SECONDS = 3600;
/** Longest token accepted; an RS256 token with long claims stays far below. */
export const MAX_TOKEN_LENGTH = 8192;

/** Options of a {@link TokenVerifier}. */
export interface TokenVerifierOptions {
  /** The expected `iss`: the broker's identity. */
  readonly issuer: string;
  /** The token-signing keys. */
  readonly jwks: JwksSource;
  /** The clock `exp`, `nbf` and `iat` are checked against. Default: the system clock. */
  readonly clock?: Clock;
  /** Allowed skew between the broker's clock and this one, in seconds (0 to 300). Default 5. */
  readonly clockToleranceSeconds?: number;
  /** Refuse tokens whose `exp − iat` is longer than this, in seconds. Default 3600. */
  readonly maxTtlSeconds?: number;
}

/** What a service requires of a token, per request. */
export interface TokenExpectations {
  /** This service's audience: `aud` must be it or an array containing it. */
  readonly audience: string;
  /** Scopes the request needs; the token must carry all of them. Default: none. */
  readonly scopes?: readonly string[];
  /**
   * The TLS client certificate of the peer presenting the token (DER bytes, or PEM text whose
   * first block is the leaf). A bound token is accepted only with the certificate it names.
   */
  readonly clientCertificate?: Uint8Array | string;
  /** Refuse unbound (bearer) tokens. Default false. */
  readonly requireBinding?: boolean;
}

/** The claims of a token that passed every check. */
export interface VerifiedToken {
  /** `sub`: the SPIFFE ID of the workload the token was issued to. */
  readonly subject: string;
  /** `client_id` (RFC 9068 §2.2): equal to the subject for credbroker tokens. */
  readonly clientId: string;
  /** `iss`. */
  readonly issuer: string;
  /** The expected audience, which the token's `aud` names. */
  readonly audience: string;
  /** `scope`, split on spaces. */
  readonly scopes: readonly string[];
  /** `iat`. */
  readonly issuedAt: Date;
  /** `exp`. */
  readonly expiresAt: Date;
  /** `jti`: safe to log, e.g. to correlate with the broker's audit log. */
  readonly jti: string;
  /** True if the token is bound to (and was presented with) a client certificate. */
  readonly bound: boolean;
  /** The kid of the key that signed it. */
  readonly kid: string;
  /** The JWS algorithm. */
  readonly algorithm: SignatureAlgorithm;
}

interface ParsedHeader {
  readonly alg: SignatureAlgorithm;
  readonly kid: string;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** Parsed headers by their encoded form: all tokens of one key share the same header. */
const HEADER_CACHE_LIMIT = 64;
const MAX_CLOCK_TOLERANCE_SECONDS = 300;
const SHA256_BYTES = 32;

/** Verifies credbroker access tokens for one issuer. */
export class TokenVerifier {
  readonly #issuer: string;
  readonly #clock: Clock;
  readonly #toleranceSeconds: number;
  readonly #maxTtlSeconds: number;
  readonly #cache: JwksCache | null;
  readonly #ring: Promise<KeyRing> | null;
  readonly #headers = new Map<string, ParsedHeader>();

  /**
   * @throws BrokerError invalid `tokens.verifier` for an empty issuer, a tolerance outside 0 to
   *   300 s or a maxTtlSeconds that is not positive; invalid `tokens.jwks` for a static JWK Set
   *   that is not `{"keys": [...]}`
   */
  constructor(options: TokenVerifierOptions) {
    if (options.issuer.length === 0) throw optionError('issuer must not be empty');
    const tolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
    if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > MAX_CLOCK_TOLERANCE_SECONDS) {
      throw optionError(`clockToleranceSeconds must be 0 to ${MAX_CLOCK_TOLERANCE_SECONDS}, got ${tolerance}`);
    }
    const maxTtl = options.maxTtlSeconds ?? DEFAULT_MAX_TOKEN_TTL_SECONDS;
    if (!Number.isFinite(maxTtl) || maxTtl <= 0) throw optionError(`maxTtlSeconds must be positive, got ${maxTtl}`);
    this.#issuer = options.issuer;
    this.#clock = options.clock ?? systemClock;
    this.#toleranceSeconds = tolerance;
    this.#maxTtlSeconds = maxTtl;
    if (options.jwks instanceof JwksCache) {
      this.#cache = options.jwks;
      this.#ring = null;
    } else {
      this.#cache = null;
      const ring = KeyRing.fromJwks(options.jwks);
      // Import failures surface at the first verify; do not report them as unhandled meanwhile.
      ring.catch(() => undefined);
      this.#ring = ring;
    }
  }

  /**
   * Verifies a token and returns its claims.
   * @throws TokenVerificationError with the code of the first check that failed (see
   *   {@link TokenVerificationErrorCode}); checks run cheapest first: form, alg, typ, key,
   *   signature, then the claims
   * @throws BrokerError invalid `tokens.verifier` for an empty expected audience;
   *   unavailable `tokens.jwks_unavailable` when a JwksCache has never fetched a set
   */
  async verify(token: string, expectations: TokenExpectations): Promise<VerifiedToken> {
    const { audience } = expectations;
    if (audience.length === 0) throw optionError('the expected audience must not be empty');
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw refuse('malformed', `expected a compact JWS of 1 to ${MAX_TOKEN_LENGTH} characters`);
    }
    const firstDot = token.indexOf('.');
    const secondDot = firstDot < 0 ? -1 : token.indexOf('.', firstDot + 1);
    if (secondDot < 0 || token.includes('.', secondDot + 1)) {
      throw refuse('malformed', 'expected a compact JWS of three dot-separated parts');
    }
    const header = this.#header(token.slice(0, firstDot));
    const encodedPayload = token.slice(firstDot + 1, secondDot);
    const encodedSignature = token.slice(secondDot + 1);
    if (!BASE64URL.test(encodedPayload)) throw refuse('malformed', 'the payload is not base64url');
    const signature = Buffer.from(encodedSignature, 'base64url');
    // Only the canonical encoding: one signature, one token string (no malleable variants).
    if (!BASE64URL.test(encodedSignature) || signature.toString('base64url') !== encodedSignature) {
      throw refuse('malformed', 'the signature is not canonical base64url');
    }

    const key = await this.#key(header.kid);
    if (key === undefined) throw refuse('unknown_kid', `no token-signing key has the kid ${quoteUntrusted(header.kid)}`);
    if (key.algorithm !== header.alg) {
      throw refuse('algorithm', `the key ${quoteUntrusted(key.kid)} verifies ${key.algorithm}, the token says ${header.alg}`);
    }
    if (!verifySignature(header.alg, key.publicKey, Buffer.from(token.slice(0, secondDot), 'latin1'), signature)) {
      throw refuse('signature', `the signature does not verify with the key ${quoteUntrusted(key.kid)}`);
    }
    return this.#claims(decodeJsonObject(encodedPayload, 'payload'), header, expectations);
  }

  #header(encoded: string): ParsedHeader {
    const cached = this.#headers.get(encoded);
    if (cached !== undefined) return cached;
    const header = decodeJsonObject(encoded, 'header');
    const { alg, typ, kid, crit } = header;
    if (!isTokenAlgorithm(alg)) {
      const named = alg === undefined ? 'the header names no alg' : `the alg ${quoteUntrusted(alg)} is not accepted`;
      throw refuse('algorithm', `${named} (expected ES256, ES384, EdDSA or RS256)`);
    }
    if (typeof typ !== 'string' || normalizedType(typ) !== `application/${ACCESS_TOKEN_TYPE}`) {
      throw refuse('type', `the header typ is ${typ === undefined ? 'missing' : quoteUntrusted(typ)}, expected "${ACCESS_TOKEN_TYPE}"`);
    }
    // RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
    if (crit !== undefined) throw refuse('malformed', 'the header has crit extensions');
    if (typeof kid !== 'string' || kid.length === 0) throw refuse('malformed', 'the header has no kid');
    const parsed: ParsedHeader = { alg, kid };
    if (this.#headers.size >= HEADER_CACHE_LIMIT) this.#headers.clear();
    this.#headers.set(encoded, parsed);
    return parsed;
  }

  async #key(kid: string): Promise<VerificationKey | undefined> {
    if (this.#cache !== null) return this.#cache.key(kid);
    const ring = await (this.#ring ?? Promise.resolve(KeyRing.empty()));
    return ring.get(kid);
  }

  #claims(claims: Readonly<Record<string, unknown>>, header: ParsedHeader, expectations: TokenExpectations): VerifiedToken {
    const { iss, sub, client_id: clientId, aud, scope, jti, iat, nbf, exp, cnf } = claims;
    if (typeof sub !== 'string' || sub.length === 0) throw missing('sub');
    if (typeof clientId !== 'string' || clientId.length === 0) throw missing('client_id');
    if (typeof jti !== 'string' || jti.length === 0) throw missing('jti');
    if (typeof scope !== 'string') throw missing('scope');
    if (!isNumericDate(iat)) throw missing('iat');
    if (!isNumericDate(exp)) throw missing('exp');
    if (nbf !== undefined && !isNumericDate(nbf)) throw missing('nbf');

    if (iss !== this.#issuer) {
      throw refuse('issuer', iss === undefined ? 'the token names no issuer' : `the token was issued by ${quoteUntrusted(iss)}, not by the expected issuer`);
    }
    const { audience } = expectations;
    if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) {
      throw refuse('audience', `the token is not for the audience ${JSON.stringify(audience)}`);
    }

    // As jose: NumericDates against whole seconds of now, tolerance on both sides, exp exclusive.
    const nowSeconds = Math.floor(this.#clock.now().getTime() / 1000);
    const tolerance = this.#toleranceSeconds;
    if (exp <= nowSeconds - tolerance) throw refuse('expired', `the token expired at ${isoOf(exp)}`);
    if (nbf !== undefined && nbf > nowSeconds + tolerance) throw refuse('not_yet_valid', `the token is not valid before ${isoOf(nbf)}`);
    if (iat > nowSeconds + tolerance) throw refuse('not_yet_valid', `the token claims to be issued in the future (${isoOf(iat)})`);
    if (exp - iat > this.#maxTtlSeconds) {
      throw refuse('too_long', `the token lives ${exp - iat} s, more than the ${this.#maxTtlSeconds} s this verifier accepts`);
    }

    const scopes = scope.split(' ');
    if (scopes.includes('')) throw refuse('malformed', 'the scope claim is not space-separated scope tokens');
    const absent = (expectations.scopes ?? []).filter((wanted) => !scopes.includes(wanted));
    if (absent.length > 0) {
      const shown = absent.slice(0, 10).map((wanted) => quoteUntrusted(wanted));
      throw refuse('scope', `the token lacks the scope${absent.length === 1 ? '' : 's'} ${shown.join(', ')}${absent.length > 10 ? ' and more' : ''}`);
    }

    const bound = checkBinding(cnf, expectations);
    return {
      subject: sub,
      clientId,
      issuer: this.#issuer,
      audience,
      scopes,
      issuedAt: new Date(iat * 1000),
      expiresAt: new Date(exp * 1000),
      jti,
      bound,
      kid: header.kid,
      algorithm: header.alg,
    };
  }
}

/** @returns true if the token is bound (and the certificate matches). @throws TokenVerificationError */
function checkBinding(cnf: unknown, expectations: TokenExpectations): boolean {
  if (cnf === undefined) {
    if (expectations.requireBinding === true) throw refuse('binding', 'the token is not bound to a certificate, and binding is required');
    return false;
  }
  if (cnf === null || typeof cnf !== 'object' || Array.isArray(cnf)) throw refuse('malformed', 'the cnf claim is not an object');
  const thumbprint = (cnf as Readonly<Record<string, unknown>>)['x5t#S256'];
  // Another confirmation method (e.g. DPoP's jkt) cannot be checked here: refuse, never ignore.
  if (thumbprint === undefined) throw refuse('binding', 'the token is bound by a confirmation method other than x5t#S256');
  const expected = typeof thumbprint === 'string' && BASE64URL.test(thumbprint) ? Buffer.from(thumbprint, 'base64url') : null;
  if (expected?.length !== SHA256_BYTES) throw refuse('malformed', 'cnf x5t#S256 is not a base64url SHA-256');
  const certificate = expectations.clientCertificate;
  if (certificate === undefined) throw refuse('binding', 'the token is bound to a certificate, and none was presented');
  let presented: Buffer;
  try {
    presented = certificateSha256(typeof certificate === 'string' ? certificateDerFromPem(certificate) : certificate);
  } catch {
    throw refuse('binding', 'the presented client certificate is not a PEM certificate');
  }
  if (!timingSafeEqual(presented, expected)) {
    throw refuse('binding', 'the token is bound to another certificate than the one presented');
  }
  return true;
}

function decodeJsonObject(encoded: string, part: 'header' | 'payload'): Readonly<Record<string, unknown>> {
  let value: unknown;
  try {
    if (!BASE64URL.test(encoded)) throw new Error('not base64url');
    value = JSON.parse(strictUtf8.decode(Buffer.from(encoded, 'base64url')));
  } catch {
    throw refuse('malformed', `the ${part} is not base64url JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw refuse('malformed', `the ${part} is not a JSON object`);
  return value as Readonly<Record<string, unknown>>;
}

/** RFC 7515 §4.1.9: "application/" may be omitted; media types compare case-insensitively. */
function normalizedType(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.includes('/') ? lower : `application/${lower}`;
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function isoOf(seconds: number): string {
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? String(seconds) : date.toISOString();
}

function missing(claim: string): TokenVerificationError {
  return refuse('malformed', `the claim ${claim} is missing or of the wrong type`);
}

function refuse(code: TokenVerificationError['code'], message: string): TokenVerificationError {
  return new TokenVerificationError(code, message);
}

function optionError(publicMessage: string): BrokerError {
  return new BrokerError('invalid', { code: 'tokens.verifier', publicMessage });
}
