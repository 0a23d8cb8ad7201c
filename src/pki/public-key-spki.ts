/**
 * Public keys to and from their DER SubjectPublicKeyInfo, fast, for the issuance hot path.
 *
 * Measured with Node 20 / OpenSSL 3.0 (DESIGN.md "Performance shape"): `createPublicKey` from
 * SPKI DER costs ≈ 100 µs whatever the key, and exporting a KeyObject back to SPKI DER costs
 * about as much again — both go through OpenSSL 3's generic decoder/encoder machinery. A CSR
 * check and a leaf build each needed one of them, more than the HSM signature itself. So:
 *
 * - {@link importPublicKeySpki} recognises the canonical SPKI of each leaf key type and builds
 *   the KeyObject from its components (EC: the raw point through WebCrypto, ≈ 40 µs; Ed25519 and
 *   RSA: a JWK, < 10 µs). The key is the same key (OpenSSL checks the EC point the same way in
 *   both paths); any other shape, and any failure, takes the generic DER path, so what is
 *   accepted and every error stay exactly those of `createPublicKey`.
 * - It refuses the EC point at infinity, which OpenSSL decodes but Node 20 cannot describe:
 *   reading `asymmetricKeyDetails` of such a key aborts the process (a one-CSR denial of service
 *   of the broker before this guard), and any EC key in an unusual encoding that OpenSSL
 *   cannot encode again.
 * - It remembers the SPKI of the keys it built, and {@link spkiOfPublicKey} returns it without
 *   an export. Only canonical encodings are remembered, i.e. exactly the bytes an export would
 *   give (the unit tests compare them).
 */
import { KeyObject, createPublicKey, webcrypto } from 'node:crypto';
import { spkiOf } from '../core/index.js';
import { DerCursor, DerTag, derChildren, derDecodeBitString, derDecodeInteger } from './der-reader.js';
import { MAX_RSA_BITS, MIN_RSA_BITS } from './public-key-type.js';

/** SPKI bytes of keys built here, or exported once: never exported twice. */
const remembered = new WeakMap<KeyObject, Uint8Array>();

/** Everything before the key bits of a canonical SPKI, per EC curve (named curve, uncompressed point). */
const EC_PREFIXES: readonly { readonly curve: 'P-256' | 'P-384'; readonly prefix: Buffer; readonly pointBytes: number }[] = [
  { curve: 'P-256', prefix: Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), pointBytes: 65 },
  { curve: 'P-384', prefix: Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'), pointBytes: 97 },
];
const ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/** AlgorithmIdentifier rsaEncryption with NULL parameters (RFC 3279 §2.3.1). */
const RSA_ALGORITHM = Buffer.from('300d06092a864886f70d0101010500', 'hex');
const RSA_EXPONENT_65537 = Buffer.from('010001', 'hex');

/**
 * The public key of a DER SubjectPublicKeyInfo.
 * @throws Error exactly as `createPublicKey({ key, format: 'der', type: 'spki' })` does; also
 *   RangeError for the EC point at infinity and Error for an EC key that cannot be encoded
 *   again (see the module comment)
 */
export async function importPublicKeySpki(spki: Uint8Array): Promise<KeyObject> {
  const canonical = await importCanonical(spki);
  if (canonical !== null) {
    remembered.set(canonical, Uint8Array.from(spki));
    return canonical;
  }
  if (isPointAtInfinity(spki)) {
    // OpenSSL reads it, but Node 20 then aborts the whole process on the key's
    // asymmetricKeyDetails (crypto_ec.cc GetEcKeyDetail: CHECK_NOT_NULL): refused first.
    throw new RangeError('the public key is the EC point at infinity');
  }
  const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType === 'ec') {
    // Defence in depth for EC keys in unusual encodings (compressed, explicit parameters, …):
    // one that OpenSSL cannot encode again has no usable point, and may be another key Node
    // cannot describe without aborting. Refused here (the export throws); kept otherwise, as
    // the certificate will need it.
    remembered.set(key, new Uint8Array(spkiOf(key)));
  }
  return key;
}

/**
 * The DER SubjectPublicKeyInfo of a public key: remembered for keys from
 * {@link importPublicKeySpki}, exported (once per key) otherwise. Do not modify the result.
 */
export function spkiOfPublicKey(publicKey: KeyObject): Uint8Array {
  let spki = remembered.get(publicKey);
  if (spki === undefined) {
    spki = new Uint8Array(spkiOf(publicKey));
    remembered.set(publicKey, spki);
  }
  return spki;
}

/** A KeyObject built from the components of a canonical SPKI, or null (then DER decides). */
async function importCanonical(spki: Uint8Array): Promise<KeyObject | null> {
  try {
    for (const { curve, prefix, pointBytes } of EC_PREFIXES) {
      if (spki.length === prefix.length + pointBytes && startsWith(spki, prefix) && spki[prefix.length] === 0x04) {
        const point = spki.subarray(prefix.length);
        return KeyObject.from(await webcrypto.subtle.importKey('raw', point, { name: 'ECDSA', namedCurve: curve }, true, ['verify']));
      }
    }
    if (spki.length === ED25519_PREFIX.length + 32 && startsWith(spki, ED25519_PREFIX)) {
      const x = Buffer.from(spki.subarray(ED25519_PREFIX.length)).toString('base64url');
      return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
    }
    const modulus = canonicalRsaModulus(spki);
    if (modulus !== null) {
      return createPublicKey({ key: { kty: 'RSA', n: Buffer.from(modulus).toString('base64url'), e: 'AQAB' }, format: 'jwk' });
    }
  } catch {
    // Not a valid key after all (e.g. a point off the curve): the DER path gives the error.
  }
  return null;
}

/**
 * The modulus (without sign byte) of an RSA SPKI in its unique DER form, with exponent 65537
 * and a size leaves may have; else null. Strict DER (minimal lengths and integers, nothing
 * trailing) makes the encoding unique, so it is what an export would produce.
 */
function canonicalRsaModulus(spki: Uint8Array): Uint8Array | null {
  if (spki.length < RSA_ALGORITHM.length || spki.length > 2048) return null;
  const outer = new DerCursor(spki, 'SubjectPublicKeyInfo');
  const body = derChildren(outer.read(DerTag.sequence, 'SubjectPublicKeyInfo'), 'SubjectPublicKeyInfo');
  outer.end();
  if (!Buffer.from(body.read(DerTag.sequence, 'algorithm').raw).equals(RSA_ALGORITHM)) return null;
  const bits = derDecodeBitString(body.read(DerTag.bitString, 'subjectPublicKey').content);
  body.end();
  if (bits.unusedBits !== 0) return null;
  const keyCursor = new DerCursor(bits.bytes, 'RSAPublicKey');
  const key = derChildren(keyCursor.read(DerTag.sequence, 'RSAPublicKey'), 'RSAPublicKey');
  keyCursor.end();
  const n = key.read(DerTag.integer, 'modulus').content;
  const e = key.read(DerTag.integer, 'publicExponent').content;
  key.end();
  derDecodeInteger(n); // minimal encoding
  if (!Buffer.from(e).equals(RSA_EXPONENT_65537) || ((n[0] ?? 0x80) & 0x80) !== 0) return null;
  const magnitude = n[0] === 0 ? n.subarray(1) : n;
  const bitLength = magnitude.length * 8 - Math.clz32(magnitude[0] ?? 0) + 24;
  return bitLength >= MIN_RSA_BITS && bitLength <= MAX_RSA_BITS ? magnitude : null;
}

/** True if the subjectPublicKey is the single octet 0x00: the point at infinity (SEC 1 §2.3.3). */
function isPointAtInfinity(spki: Uint8Array): boolean {
  try {
    const outer = new DerCursor(spki, 'SubjectPublicKeyInfo');
    const body = derChildren(outer.read(DerTag.sequence, 'SubjectPublicKeyInfo'), 'SubjectPublicKeyInfo');
    body.read(DerTag.sequence, 'algorithm');
    // OpenSSL ignores the unused-bits count here: [n, 0x00] is the point at infinity for any n.
    const key = body.read(DerTag.bitString, 'subjectPublicKey').content;
    return key.length === 2 && key[1] === 0;
  } catch {
    return false;
  }
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}
