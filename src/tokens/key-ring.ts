/**
 * The verification keys of one JWK Set, imported once: jose's `createLocalJWKSet` selects and
 * imports each key (kid, alg, kty/crv, use, key_ops rules of RFC 7517), then the key is kept as
 * a node `KeyObject` so each verification is one synchronous `crypto.verify` with no import,
 * no key selection and no thread-pool hop.
 */
import { KeyObject } from 'node:crypto';
import { createLocalJWKSet, type JSONWebKeySet, type JWK } from 'jose';
import { BrokerError, type SignatureAlgorithm } from '../core/index.js';

/** The JWS algorithms a token may use: asymmetric only, never `none` nor HMAC. */
export const TOKEN_ALGORITHMS: readonly SignatureAlgorithm[] = Object.freeze(['ES256', 'ES384', 'EdDSA', 'RS256']);

/** True if `value` is one of {@link TOKEN_ALGORITHMS}. */
export function isTokenAlgorithm(value: unknown): value is SignatureAlgorithm {
  return typeof value === 'string' && (TOKEN_ALGORITHMS as readonly string[]).includes(value);
}

/** Smallest RSA modulus accepted (as jose and RFC 7518 §3.3 require). */
const MIN_RSA_BITS = 2048;

/** Longest kid kept; longer ones are not credbroker's (RFC 7638 thumbprints have 43 characters). */
const MAX_KID_LENGTH = 256;

/** One usable verification key. */
export interface VerificationKey {
  /** The JWK `kid`. */
  readonly kid: string;
  /** The only algorithm this key verifies: its JWK `alg`, or the one its kty/crv implies. */
  readonly algorithm: SignatureAlgorithm;
  /** The imported public key. */
  readonly publicKey: KeyObject;
}

/**
 * The usable keys of a JWK Set, by kid. Keys credbroker cannot use are left out, as RFC 7517
 * §5 says (unknown kty or alg, no kid, private or symmetric keys, `use` other than "sig",
 * `key_ops` without "verify", RSA below 2048 bits, points not on the curve), and so are
 * keys whose kid appears more than once (ambiguous).
 */
export class KeyRing {
  /** The usable keys' JWKs as given, for {@link JwksCache} retention. */
  readonly jwks: JSONWebKeySet;
  readonly #keys: ReadonlyMap<string, VerificationKey>;

  private constructor(jwks: JSONWebKeySet, keys: ReadonlyMap<string, VerificationKey>) {
    this.jwks = jwks;
    this.#keys = keys;
  }

  /** A ring with no keys. */
  static empty(): KeyRing {
    return new KeyRing({ keys: [] }, new Map());
  }

  /**
   * Imports the usable keys of a JWK Set.
   * @throws BrokerError invalid `tokens.jwks` (synchronously, not as a rejection) if `jwks` is
   *   not an object with a `keys` array of objects; single unusable keys are skipped, not errors
   */
  static fromJwks(jwks: unknown): Promise<KeyRing> {
    // Shape errors are thrown at once (not as a rejection) so a constructor can report them.
    return KeyRing.#import(jwkSetMembers(jwks));
  }

  static async #import(members: readonly JWK[]): Promise<KeyRing> {
    const kidCount = new Map<string, number>();
    for (const jwk of members) {
      if (typeof jwk.kid === 'string') kidCount.set(jwk.kid, (kidCount.get(jwk.kid) ?? 0) + 1);
    }
    const candidates: { jwk: JWK; kid: string; algorithm: SignatureAlgorithm }[] = [];
    for (const jwk of members) {
      const kid = jwk.kid;
      const algorithm = algorithmOfJwk(jwk);
      if (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH || kidCount.get(kid) !== 1 || algorithm === null) continue;
      candidates.push({ jwk, kid, algorithm });
    }
    let resolve: ReturnType<typeof createLocalJWKSet>;
    try {
      resolve = createLocalJWKSet({ keys: candidates.map((candidate) => candidate.jwk) });
    } catch (error) {
      throw malformed('jose refused the JWK Set', error);
    }
    const keys = new Map<string, VerificationKey>();
    const usable: JWK[] = [];
    await Promise.all(
      candidates.map(async ({ kid, algorithm }) => {
        let publicKey: KeyObject;
        try {
          const cryptoKey = await resolve({ alg: algorithm, kid });
          publicKey = KeyObject.from(cryptoKey);
        } catch {
          return; // not usable for its algorithm (RFC 7517 §5: ignore it)
        }
        const modulusLength = publicKey.asymmetricKeyDetails?.modulusLength;
        if (publicKey.type !== 'public' || (algorithm === 'RS256' && (modulusLength ?? 0) < MIN_RSA_BITS)) return;
        keys.set(kid, Object.freeze({ kid, algorithm, publicKey }));
      }),
    );
    for (const { jwk, kid } of candidates) if (keys.has(kid)) usable.push(jwk);
    return new KeyRing({ keys: usable }, keys);
  }

  /** The key with this kid, or undefined. */
  get(kid: string): VerificationKey | undefined {
    return this.#keys.get(kid);
  }

  /** The kids of the usable keys, in set order. */
  kids(): string[] {
    return this.jwks.keys.map((jwk) => jwk.kid ?? '');
  }
}

/** The members of a JWK Set, copied. @throws BrokerError invalid `tokens.jwks` */
function jwkSetMembers(jwks: unknown): JWK[] {
  if (jwks === null || typeof jwks !== 'object' || Array.isArray(jwks)) throw malformed('a JWK Set is not an object');
  const keys: unknown = (jwks as Readonly<Record<string, unknown>>).keys;
  if (!Array.isArray(keys)) throw malformed('a JWK Set has no "keys" array');
  return keys.map((member: unknown) => {
    if (member === null || typeof member !== 'object' || Array.isArray(member)) throw malformed('a JWK Set member is not an object');
    return structuredClone(member);
  });
}

/** The algorithm a JWK verifies, or null if credbroker tokens cannot use it. */
function algorithmOfJwk(jwk: JWK): SignatureAlgorithm | null {
  if (jwk.alg !== undefined) return isTokenAlgorithm(jwk.alg) ? jwk.alg : null;
  switch (jwk.kty) {
    case 'EC':
      return jwk.crv === 'P-256' ? 'ES256' : jwk.crv === 'P-384' ? 'ES384' : null;
    case 'OKP':
      return jwk.crv === 'Ed25519' ? 'EdDSA' : null;
    case 'RSA':
      return 'RS256';
    default:
      return null;
  }
}

function malformed(logMessage: string, cause?: unknown): BrokerError {
  return new BrokerError('invalid', {
    code: 'tokens.jwks',
    publicMessage: 'expected a JSON Web Key Set: {"keys": [JWK, …]}',
    logMessage,
    ...(cause === undefined ? {} : { cause }),
  });
}
