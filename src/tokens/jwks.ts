/**
 * JSON Web Key Sets (RFC 7517 §5) as the broker publishes them (`GetJwks`), JWK thumbprints
 * (RFC 7638, the token `kid`) and certificate thumbprints (`x5t#S256`, RFC 8705 §3.1, the
 * token binding).
 */
import { createHash, type KeyObject } from 'node:crypto';
import type { JSONWebKeySet, JWK } from 'jose';
import { BrokerError } from '../core/index.js';

/** The members RFC 7638 §3.2 hashes, per key type (RFC 8037 §2 for OKP), in lexicographic order. */
const THUMBPRINT_MEMBERS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  EC: Object.freeze(['crv', 'kty', 'x', 'y']),
  RSA: Object.freeze(['e', 'kty', 'n']),
  OKP: Object.freeze(['crv', 'kty', 'x']),
});

/** JWK members that only private or symmetric keys have: never published. */
const SECRET_MEMBERS: readonly string[] = Object.freeze(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv']);

/**
 * The RFC 7638 thumbprint of a public JWK: base64url SHA-256 of the required members in
 * lexicographic order, as JSON without whitespace. Members beyond the required ones (kid, alg,
 * use) do not change it.
 * @throws BrokerError invalid `tokens.jwk` for a key type other than EC, RSA and OKP or a
 *   required member that is missing or not a string
 */
export function jwkThumbprint(jwk: JWK): string {
  const members = typeof jwk.kty === 'string' ? THUMBPRINT_MEMBERS[jwk.kty] : undefined;
  if (members === undefined) {
    throw new BrokerError('invalid', { code: 'tokens.jwk', publicMessage: 'expected a public JWK of kty EC, RSA or OKP' });
  }
  const record = jwk as Readonly<Record<string, unknown>>;
  const canonical: Record<string, string> = {};
  for (const member of members) {
    const value = record[member];
    if (typeof value !== 'string' || value.length === 0) {
      throw new BrokerError('invalid', { code: 'tokens.jwk', publicMessage: `JWK member "${member}" is missing or not a string` });
    }
    canonical[member] = value;
  }
  // JSON.stringify keeps insertion order, which is the RFC's lexicographic order here.
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url');
}

/**
 * The public JWK of a public key with only the members of its key type (no `ext`, `key_ops`).
 * @throws BrokerError internal `tokens.jwk` for a key type JOSE cannot express
 */
export function publicJwkOf(publicKey: KeyObject): JWK {
  if (publicKey.type !== 'public') {
    throw new BrokerError('internal', { code: 'tokens.jwk', publicMessage: 'internal error', logMessage: 'publicJwkOf needs a public key' });
  }
  const exported = publicKey.export({ format: 'jwk' });
  const members = typeof exported.kty === 'string' ? THUMBPRINT_MEMBERS[exported.kty] : undefined;
  if (members === undefined) {
    throw new BrokerError('internal', { code: 'tokens.jwk', publicMessage: 'internal error', logMessage: `no JWK form for key type ${String(exported.kty)}` });
  }
  const jwk: Record<string, string> = {};
  for (const member of members) {
    const value: unknown = exported[member];
    if (typeof value === 'string') jwk[member] = value;
  }
  return jwk;
}

/** Something that publishes a token-verification key, e.g. a {@link TokenIssuer}. */
export interface JwkHolder {
  /** The public JWK with kid, alg and use. */
  readonly jwk: JWK;
}

/**
 * The JWK Set of some token-verification keys: the current key and, during a roll-over, the
 * next and previous ones (in the order given). Each member is copied; the same key given twice
 * appears once.
 * @throws BrokerError internal `tokens.jwks` if a JWK has no kid, carries private-key members
 *   (a private key must never be published) or two different keys share a kid
 */
export function jwksOf(sources: readonly (JWK | JwkHolder)[]): JSONWebKeySet {
  const keys: JWK[] = [];
  const byKid = new Map<string, string>();
  for (const source of sources) {
    const jwk = 'jwk' in source ? source.jwk : source;
    const kid = jwk.kid;
    if (typeof kid !== 'string' || kid.length === 0) throw jwksError('a JWK in the set has no kid');
    const record = jwk as Readonly<Record<string, unknown>>;
    const secret = SECRET_MEMBERS.find((member) => record[member] !== undefined);
    if (secret !== undefined) throw jwksError(`the JWK ${kid} has the private member "${secret}"`);
    const json = stableJson(jwk);
    const seen = byKid.get(kid);
    if (seen !== undefined) {
      if (seen !== json) throw jwksError(`two different JWKs share the kid ${kid}`);
      continue;
    }
    byKid.set(kid, json);
    keys.push(JSON.parse(json) as JWK);
  }
  return { keys };
}

/**
 * The JWK Set as JSON that depends only on its content: keys in set order, members of every
 * object sorted by name, no whitespace. Suitable for `Jwks.jwks_json` and for ETag-like
 * comparison.
 */
export function jwksJson(jwks: JSONWebKeySet): string {
  return stableJson(jwks);
}

function stableJson(value: unknown): string {
  return JSON.stringify(sortedCopy(value));
}

function sortedCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedCopy);
  if (value !== null && typeof value === 'object') {
    const record = value as Readonly<Record<string, unknown>>;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(record).sort()) out[key] = sortedCopy(record[key]);
    return out;
  }
  return value;
}

function jwksError(logMessage: string): BrokerError {
  return new BrokerError('internal', { code: 'tokens.jwks', publicMessage: 'internal error', logMessage });
}

/** SHA-256 of a DER certificate: the 32 bytes a bound token's `cnf` names. */
export function certificateSha256(der: Uint8Array): Buffer {
  return createHash('sha256').update(der).digest();
}

/** The `x5t#S256` of a DER certificate (RFC 8705 §3.1): base64url SHA-256, no padding. */
export function certificateThumbprint(der: Uint8Array): string {
  return certificateSha256(der).toString('base64url');
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/;

/**
 * The DER of the first CERTIFICATE block of a PEM text: the leaf, in the order TLS stacks and
 * credbroker's agent write chains.
 * @throws BrokerError invalid `tokens.certificate_pem` if there is no well-formed CERTIFICATE
 *   block
 */
export function certificateDerFromPem(pem: string): Buffer {
  const match = PEM_CERTIFICATE.exec(pem);
  const body = match?.[1]?.replace(/[\r\n]/g, '');
  const der = body === undefined ? undefined : Buffer.from(body, 'base64');
  // A certificate is a DER SEQUENCE; a re-encoding that differs means stray padding or junk.
  if (der === undefined || der.length === 0 || der[0] !== 0x30 || der.toString('base64') !== body) {
    throw new BrokerError('invalid', {
      code: 'tokens.certificate_pem',
      publicMessage: 'expected a PEM certificate (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)',
    });
  }
  return der;
}

/**
 * The `x5t#S256` of the first certificate of a PEM text.
 * @throws BrokerError invalid `tokens.certificate_pem` (see {@link certificateDerFromPem})
 */
export function certificateThumbprintFromPem(pem: string): string {
  return certificateThumbprint(certificateDerFromPem(pem));
}
