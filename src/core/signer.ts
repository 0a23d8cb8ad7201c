/**
 * The Signer seam (DESIGN.md): `pki` and `tokens` sign bytes through this interface and never
 * import `hsm`. The HSM implementation lives in `src/hsm`, a software one (for unit tests and
 * tooling) in `software-signer.ts`.
 *
 * Signature encodings follow WebCrypto and JOSE, not X.509: ECDSA signatures are the raw
 * IEEE P1363 form `r || s` (what PKCS#11 `CKM_ECDSA` returns), so a caller that needs the DER
 * `SEQUENCE { r, s }` of X.509 converts with {@link ecdsaRawToDer}.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';

/** Key types credbroker creates and accepts for CA and token keys. */
export type KeyType = 'P-256' | 'P-384' | 'RSA-3072' | 'Ed25519';

/** Every key type, in a stable order. */
export const KEY_TYPES: readonly KeyType[] = Object.freeze(['P-256', 'P-384', 'RSA-3072', 'Ed25519']);

/** Signature algorithms, named as in JOSE (RFC 7518 / RFC 8037). */
export type SignatureAlgorithm = 'ES256' | 'ES384' | 'RS256' | 'EdDSA';

/** The signature algorithm a key of each type signs with. */
export const ALGORITHM_OF_KEY_TYPE: Readonly<Record<KeyType, SignatureAlgorithm>> = Object.freeze({
  'P-256': 'ES256',
  'P-384': 'ES384',
  'RSA-3072': 'RS256',
  Ed25519: 'EdDSA',
});

/** Byte length of one ECDSA coordinate (r or s) per algorithm. */
const ECDSA_FIELD_BYTES: Readonly<Partial<Record<SignatureAlgorithm, number>>> = Object.freeze({
  ES256: 32,
  ES384: 48,
});

/** Something that signs bytes with a private key it never shows. */
export interface Signer {
  /** The algorithm of every signature this signer returns. */
  readonly algorithm: SignatureAlgorithm;
  /** The type of the key. */
  readonly keyType: KeyType;
  /** The public key, for verification and for certificates (SPKI). */
  readonly publicKey: KeyObject;
  /** Safe to log: where the key lives, e.g. `hsm:credbroker-online/intermediate-2026`. */
  readonly description: string;
  /**
   * Signs `data` (the whole message; the signer hashes as its algorithm says).
   * @returns ECDSA: raw `r || s`; RSA: the PKCS#1 v1.5 signature; Ed25519: 64 bytes
   * @throws BrokerError (unavailable when the key's device is down; internal on a bad signature)
   */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** Node's digest name for an algorithm, or null for EdDSA (which hashes internally). */
export function digestOf(algorithm: SignatureAlgorithm): 'sha256' | 'sha384' | null {
  switch (algorithm) {
    case 'ES256':
    case 'RS256':
      return 'sha256';
    case 'ES384':
      return 'sha384';
    case 'EdDSA':
      return null;
  }
}

/**
 * Verifies a signature in software (node:crypto), in the encoding {@link Signer.sign} returns.
 * Never throws for a malformed signature: returns false.
 */
export function verifySignature(
  algorithm: SignatureAlgorithm,
  publicKey: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    const isEcdsa = algorithm === 'ES256' || algorithm === 'ES384';
    return cryptoVerify(
      digestOf(algorithm),
      data,
      isEcdsa ? { key: publicKey, dsaEncoding: 'ieee-p1363' } : publicKey,
      signature,
    );
  } catch {
    return false;
  }
}

/**
 * {@link verifySignature} on libuv's thread pool: the event loop stays free and a second core
 * verifies while the first signs. Resolves false for a malformed signature.
 */
export function verifySignatureAsync(
  algorithm: SignatureAlgorithm,
  publicKey: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  const isEcdsa = algorithm === 'ES256' || algorithm === 'ES384';
  return new Promise((resolve) => {
    try {
      cryptoVerify(
        digestOf(algorithm),
        data,
        isEcdsa ? { key: publicKey, dsaEncoding: 'ieee-p1363' } : publicKey,
        signature,
        (error, valid) => {
          resolve(error === null && valid);
        },
      );
    } catch {
      resolve(false);
    }
  });
}

/** The key type of a public key, or null if credbroker does not use that type. */
export function keyTypeOf(publicKey: KeyObject): KeyType | null {
  const details = publicKey.asymmetricKeyDetails;
  switch (publicKey.asymmetricKeyType) {
    case 'ec':
      if (details?.namedCurve === 'prime256v1') return 'P-256';
      if (details?.namedCurve === 'secp384r1') return 'P-384';
      return null;
    case 'rsa':
      return details?.modulusLength === 3072 ? 'RSA-3072' : null;
    case 'ed25519':
      return 'Ed25519';
    default:
      return null;
  }
}

/** A public key from its DER SubjectPublicKeyInfo. */
export function publicKeyFromSpki(spki: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
}

/** The DER SubjectPublicKeyInfo of a public key. */
export function spkiOf(publicKey: KeyObject): Buffer {
  return publicKey.export({ format: 'der', type: 'spki' });
}

/**
 * Converts a raw ECDSA signature `r || s` to the DER `Ecdsa-Sig-Value` of RFC 3279 §2.2.3
 * (what X.509 and CMS carry).
 * @throws RangeError if the length does not fit the algorithm
 */
export function ecdsaRawToDer(raw: Uint8Array, algorithm: SignatureAlgorithm): Buffer {
  const fieldBytes = ECDSA_FIELD_BYTES[algorithm];
  if (fieldBytes === undefined || raw.length !== 2 * fieldBytes) {
    throw new RangeError(`a raw ${algorithm} signature has ${2 * (fieldBytes ?? 0)} bytes, got ${raw.length}`);
  }
  const r = derInteger(raw.subarray(0, fieldBytes));
  const s = derInteger(raw.subarray(fieldBytes));
  return Buffer.concat([Buffer.from([0x30]), derLength(r.length + s.length), r, s]);
}

/**
 * Converts a DER `Ecdsa-Sig-Value` to raw `r || s` of the algorithm's field size.
 * @throws RangeError if the DER is malformed or an integer does not fit
 */
export function ecdsaDerToRaw(der: Uint8Array, algorithm: SignatureAlgorithm): Buffer {
  const fieldBytes = ECDSA_FIELD_BYTES[algorithm];
  if (fieldBytes === undefined) throw new RangeError(`${algorithm} is not an ECDSA algorithm`);
  const reader = new DerReader(der);
  const sequence = new DerReader(reader.read(0x30));
  reader.end();
  const r = sequence.read(0x02);
  const s = sequence.read(0x02);
  sequence.end();
  return Buffer.concat([fitUnsigned(r, fieldBytes), fitUnsigned(s, fieldBytes)]);
}

function derInteger(unsigned: Uint8Array): Buffer {
  let start = 0;
  while (start < unsigned.length - 1 && unsigned[start] === 0) start++;
  const body = unsigned.subarray(start);
  const needsPad = ((body[0] ?? 0) & 0x80) !== 0;
  const content = needsPad ? Buffer.concat([Buffer.from([0]), body]) : Buffer.from(body);
  return Buffer.concat([Buffer.from([0x02]), derLength(content.length), content]);
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  if (length < 0x100) return Buffer.from([0x81, length]);
  return Buffer.from([0x82, length >> 8, length & 0xff]);
}

function fitUnsigned(integer: Uint8Array, size: number): Buffer {
  let start = 0;
  while (start < integer.length - 1 && integer[start] === 0) start++;
  const body = integer.subarray(start);
  if (body.length > size || ((integer[0] ?? 0) & 0x80) !== 0) {
    throw new RangeError(`ECDSA integer does not fit ${size} bytes or is negative`);
  }
  const out = Buffer.alloc(size);
  out.set(body, size - body.length);
  return out;
}

/** A minimal reader of definite-length DER TLVs, enough for signatures and EC points. */
export class DerReader {
  #bytes: Uint8Array;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** Reads one TLV with the given tag and returns its content. @throws RangeError */
  read(tag: number): Uint8Array {
    const bytes = this.#bytes;
    if (bytes[this.#offset] !== tag) {
      throw new RangeError(`DER: expected tag 0x${tag.toString(16)} at offset ${this.#offset}`);
    }
    let offset = this.#offset + 1;
    const first = bytes[offset++];
    if (first === undefined) throw new RangeError('DER: truncated length');
    let length = first;
    if (first & 0x80) {
      const count = first & 0x7f;
      if (count === 0 || count > 3) throw new RangeError('DER: unsupported length form');
      length = 0;
      for (let i = 0; i < count; i++) {
        const next = bytes[offset++];
        if (next === undefined) throw new RangeError('DER: truncated length');
        length = (length << 8) | next;
      }
      if (length < 0x80 || (count > 1 && length < 1 << (8 * (count - 1)))) {
        throw new RangeError('DER: non-minimal length');
      }
    }
    if (offset + length > bytes.length) throw new RangeError('DER: content runs past the end');
    this.#offset = offset + length;
    return bytes.subarray(offset, offset + length);
  }

  /** @throws RangeError if bytes remain */
  end(): void {
    if (this.#offset !== this.#bytes.length) throw new RangeError('DER: trailing bytes');
  }
}
