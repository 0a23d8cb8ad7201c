/**
 * Mints access tokens (DESIGN.md "Tokens"): compact JWS (RFC 7515) in the JWT access-token
 * profile of RFC 9068, signed through the {@link Signer} seam so the key stays in the HSM.
 *
 * The hot path (thousands of tokens per second) does no JOSE-library work: the header is
 * encoded once, the claims are one `JSON.stringify`, base64url is Buffer's, and the signature
 * from {@link Signer.sign} is already in the JWS form (raw `r || s` for ECDSA, RFC 7518 §3.4).
 */
import type { JWK } from 'jose';
import {
  ALGORITHM_OF_KEY_TYPE,
  BrokerError,
  keyTypeOf,
  toBrokerError,
  verifySignature,
  type RandomSource,
  type SignatureAlgorithm,
  type Signer,
} from '../core/index.js';
import { jwkThumbprint, publicJwkOf } from './jwks.js';

/** The JWT `typ` of access tokens (RFC 9068 §2.1). */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

/** Bytes of randomness in a `jti`: 128 bits, unguessable and collision-free in practice. */
export const JTI_BYTES = 16;

/**
 * Hard cap on a token's lifetime (DESIGN.md invariant 4: tokens 1 h at most; policy can only
 * lower). Policy checks first; this is the backstop at the point of minting.
 */
export const MAX_TOKEN_TTL_MS = 60 * 60_000;

/** Bytes of the SHA-256 certificate hash a bound token carries. */
const CERTIFICATE_SHA256_BYTES = 32;

/** Longest subject, audience or scope the issuer signs; policy checks come first, this is a backstop. */
const MAX_CLAIM_LENGTH = 1024;

/** Options of {@link TokenIssuer.create}. */
export interface TokenIssuerOptions {
  /** The token-signing key (the HSM in production, a SoftwareSigner in tests). */
  readonly signer: Signer;
  /** The `iss` claim: the broker's identity, e.g. `spiffe://example.org/credbroker`. */
  readonly issuer: string;
  /** Source of the `jti` bits. */
  readonly random: RandomSource;
}

/** One token to mint. Policy (audiences, scopes, TTL caps, binding) is checked before. */
export interface TokenRequest {
  /** `sub` and `client_id`: the caller's SPIFFE ID. */
  readonly subject: string;
  /** `aud`: the one resource server the token is for. */
  readonly audience: string;
  /** `scope` values, at least one, none containing whitespace; repeated ones are sent once. */
  readonly scopes: readonly string[];
  /** Lifetime in milliseconds: an integer from 1000 to {@link MAX_TOKEN_TTL_MS}; `exp` is `iat` plus its whole seconds. */
  readonly ttlMs: number;
  /** Issue time (`iat` = `nbf`, rounded down to the second). */
  readonly now: Date;
  /** SHA-256 of the caller's DER certificate: binds the token to it (`cnf` `x5t#S256`, RFC 8705 §3.1). */
  readonly certificateSha256?: Uint8Array;
}

/** A minted token and the facts about it that may be logged and audited (everything but `token`). */
export interface IssuedToken {
  /** The compact JWS. A bearer secret: never log it. */
  readonly token: string;
  /** The `jti` claim (base64url of 16 random bytes). */
  readonly jti: string;
  /** The `iat` claim as a Date (whole second). */
  readonly issuedAt: Date;
  /** The `exp` claim as a Date (whole second). */
  readonly expiresAt: Date;
  /** True if the token carries `cnf` `x5t#S256`. */
  readonly bound: boolean;
  /** The `kid` of the signing key. */
  readonly kid: string;
}

/** Signature length per algorithm, except RS256 whose length is the modulus's. */
const SIGNATURE_BYTES: Readonly<Partial<Record<SignatureAlgorithm, number>>> = Object.freeze({
  ES256: 64,
  ES384: 96,
  EdDSA: 64,
});

/** Mints RFC 9068 access tokens with one signing key. */
export class TokenIssuer {
  /** RFC 7638 thumbprint of the signing key (base64url SHA-256): the header `kid`. */
  readonly kid: string;
  /** The JWS `alg` of every token: the signer's algorithm. */
  readonly algorithm: SignatureAlgorithm;
  /** The public key as a JWK with `kid`, `alg` and `use: "sig"`, for the JWK Set. Frozen. */
  readonly jwk: Readonly<JWK>;
  /** The `iss` claim. */
  readonly issuer: string;
  readonly #signer: Signer;
  readonly #random: RandomSource;
  readonly #signatureBytes: number;
  /** `base64url(header) + "."`, the same for every token of this key. */
  readonly #encodedHeaderDot: string;

  private constructor(signer: Signer, issuer: string, random: RandomSource, jwk: JWK, kid: string, signatureBytes: number) {
    this.#signer = signer;
    this.#random = random;
    this.#signatureBytes = signatureBytes;
    this.issuer = issuer;
    this.algorithm = signer.algorithm;
    this.kid = kid;
    this.jwk = Object.freeze(jwk);
    const header = JSON.stringify({ alg: signer.algorithm, kid, typ: ACCESS_TOKEN_TYPE });
    this.#encodedHeaderDot = `${Buffer.from(header, 'utf8').toString('base64url')}.`;
  }

  /**
   * Prepares an issuer: derives the JWK and kid from the signer's public key and proves once
   * that the signer signs with that key (a wrongly configured HSM key label would otherwise
   * yield tokens no one can verify).
   * @throws BrokerError invalid `tokens.issuer` for an empty or over-long issuer; internal
   *   `tokens.signer` if the key type and algorithm disagree or the probe signature does not
   *   verify; whatever {@link Signer.sign} throws (e.g. unavailable when the HSM is down)
   */
  static async create(options: TokenIssuerOptions): Promise<TokenIssuer> {
    const { signer, issuer, random } = options;
    if (issuer.length === 0 || issuer.length > MAX_CLAIM_LENGTH) {
      throw new BrokerError('invalid', {
        code: 'tokens.issuer',
        publicMessage: `expected a token issuer of 1 to ${MAX_CLAIM_LENGTH} characters`,
      });
    }
    const keyType = keyTypeOf(signer.publicKey);
    const expectedAlgorithm = keyType === null ? null : ALGORITHM_OF_KEY_TYPE[keyType];
    if (expectedAlgorithm !== signer.algorithm) {
      throw signerError(`signer ${signer.description}: key type ${String(keyType)} does not sign ${signer.algorithm}`);
    }
    const publicJwk = publicJwkOf(signer.publicKey);
    const kid = jwkThumbprint(publicJwk);
    const probe = Buffer.from(`credbroker token-signer probe ${kid}`, 'utf8');
    const probeSignature = await signer.sign(probe);
    if (!verifySignature(signer.algorithm, signer.publicKey, probe, probeSignature)) {
      throw signerError(`signer ${signer.description}: a probe signature does not verify with its public key`);
    }
    const signatureBytes = SIGNATURE_BYTES[signer.algorithm] ?? probeSignature.length;
    return new TokenIssuer(signer, issuer, random, { ...publicJwk, kid, alg: signer.algorithm, use: 'sig' }, kid, signatureBytes);
  }

  /**
   * Mints one token. Claims: iss, sub, client_id (= sub), aud, scope (space-separated), iat,
   * nbf (= iat), exp (iat + ttl), jti, and `cnf` `{"x5t#S256": …}` when bound.
   * @throws BrokerError invalid `tokens.request` for an empty or whitespace-carrying subject,
   *   audience or scope, no scopes, or a ttlMs that is not an integer from 1000 to 1 h;
   *   internal `tokens.request` for an invalid `now`, a certificate hash that is not 32 bytes
   *   or random bytes of the wrong length; internal `tokens.signature` for a signature of the
   *   wrong length; {@link Signer.sign}'s BrokerErrors as they are (others become internal)
   */
  async issue(request: TokenRequest): Promise<IssuedToken> {
    const { subject, audience, ttlMs, now, certificateSha256 } = request;
    checkWord('subject', subject);
    checkWord('audience', audience);
    if (request.scopes.length === 0) throw invalidRequest('expected at least one scope');
    const scopes = [...new Set(request.scopes)];
    for (const scope of scopes) checkWord('scope', scope);
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1000 || ttlMs > MAX_TOKEN_TTL_MS) {
      throw invalidRequest(`expected a token lifetime (ttlMs) that is an integer from 1000 to ${MAX_TOKEN_TTL_MS} ms (1 h)`);
    }
    const nowMs = now.getTime();
    if (!Number.isFinite(nowMs)) throw internalRequest('issue: now is not a valid Date');
    if (certificateSha256 !== undefined && certificateSha256.length !== CERTIFICATE_SHA256_BYTES) {
      throw internalRequest(`issue: certificateSha256 has ${certificateSha256.length} bytes, expected ${CERTIFICATE_SHA256_BYTES}`);
    }
    const jtiBytes = this.#random.bytes(JTI_BYTES);
    if (jtiBytes.length !== JTI_BYTES) throw internalRequest(`issue: random source returned ${jtiBytes.length} bytes for a jti`);
    const jti = jtiBytes.toString('base64url');
    const iat = Math.floor(nowMs / 1000);
    const exp = iat + Math.floor(ttlMs / 1000);
    const claims =
      certificateSha256 === undefined
        ? { iss: this.issuer, sub: subject, client_id: subject, aud: audience, scope: scopes.join(' '), iat, nbf: iat, exp, jti }
        : {
            iss: this.issuer,
            sub: subject,
            client_id: subject,
            aud: audience,
            scope: scopes.join(' '),
            iat,
            nbf: iat,
            exp,
            jti,
            cnf: { 'x5t#S256': Buffer.from(certificateSha256.buffer, certificateSha256.byteOffset, certificateSha256.length).toString('base64url') },
          };
    const signingInput = this.#encodedHeaderDot + Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url');
    let signature: Uint8Array;
    try {
      signature = await this.#signer.sign(Buffer.from(signingInput, 'latin1'));
    } catch (error) {
      throw toBrokerError(error, 'tokens.signature');
    }
    if (signature.length !== this.#signatureBytes) {
      throw new BrokerError('internal', {
        code: 'tokens.signature',
        publicMessage: 'internal error',
        logMessage: `signer ${this.#signer.description} returned ${signature.length} signature bytes for ${this.algorithm}, expected ${this.#signatureBytes}`,
      });
    }
    const encodedSignature = Buffer.from(signature.buffer, signature.byteOffset, signature.length).toString('base64url');
    return {
      token: `${signingInput}.${encodedSignature}`,
      jti,
      issuedAt: new Date(iat * 1000),
      expiresAt: new Date(exp * 1000),
      bound: certificateSha256 !== undefined,
      kid: this.kid,
    };
  }
}

function checkWord(name: string, value: string): void {
  if (value.length === 0 || value.length > MAX_CLAIM_LENGTH || /\s/.test(value)) {
    throw invalidRequest(`expected a token ${name} of 1 to ${MAX_CLAIM_LENGTH} characters without whitespace`);
  }
}

function invalidRequest(publicMessage: string): BrokerError {
  return new BrokerError('invalid', { code: 'tokens.request', publicMessage });
}

function internalRequest(logMessage: string): BrokerError {
  return new BrokerError('internal', { code: 'tokens.request', publicMessage: 'internal error', logMessage });
}

function signerError(logMessage: string): BrokerError {
  return new BrokerError('internal', { code: 'tokens.signer', publicMessage: 'internal error', logMessage });
}
