/**
 * What each key type means in PKCS#11: generation mechanism and template, signing mechanism,
 * whether we hash in software first, and how to read the public key back.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { DerReader, type KeyType } from '../core/index.js';

/** CKM_EDDSA (PKCS#11 3.0); pkcs11js 2.1.7 has no constant for it. */
export const CKM_EDDSA = 0x1057;
/** CKM_EC_EDWARDS_KEY_PAIR_GEN (PKCS#11 3.0). */
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
/** CKK_EC_EDWARDS (PKCS#11 3.0). */
export const CKK_EC_EDWARDS = 0x40;

/** DER OBJECT IDENTIFIERs of the curves, as CKA_EC_PARAMS carries them. */
const OID_P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const OID_P384 = Buffer.from('06052b81040022', 'hex');
const OID_ED25519 = Buffer.from('06032b6570', 'hex');

/** PKCS#11 facts about one key type. */
export interface KeySpec {
  readonly keyType: KeyType;
  /** Name of the key generation mechanism, for messages. */
  readonly generateMechanismName: string;
  readonly generateMechanism: number;
  /** Attributes specific to the type, added to the public key template. */
  readonly publicTemplate: pkcs11js.Template;
  readonly signMechanismName: string;
  readonly signMechanism: number;
  /** Bytes a signature takes (the output buffer). */
  readonly signatureBytes: number;
  /** Turns the message into what the mechanism signs (a digest for raw CKM_ECDSA). */
  prepare(data: Uint8Array): Buffer;
}

function ecSpec(keyType: 'P-256' | 'P-384', oid: Buffer, hash: 'sha256' | 'sha384', fieldBytes: number): KeySpec {
  return {
    keyType,
    generateMechanismName: 'CKM_EC_KEY_PAIR_GEN',
    generateMechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN,
    publicTemplate: [{ type: pkcs11js.CKA_EC_PARAMS, value: oid }],
    // Hashing in software and signing the digest with raw CKM_ECDSA works on every module
    // (CKM_ECDSA_SHA256 is optional) and moves less data across the PKCS#11 boundary.
    signMechanismName: 'CKM_ECDSA',
    signMechanism: pkcs11js.CKM_ECDSA,
    signatureBytes: 2 * fieldBytes,
    prepare: (data) => createHash(hash).update(data).digest(),
  };
}

/** The PKCS#11 facts of every key type credbroker uses. */
export const KEY_SPECS: Readonly<Record<KeyType, KeySpec>> = Object.freeze({
  'P-256': ecSpec('P-256', OID_P256, 'sha256', 32),
  'P-384': ecSpec('P-384', OID_P384, 'sha384', 48),
  'RSA-3072': {
    keyType: 'RSA-3072',
    generateMechanismName: 'CKM_RSA_PKCS_KEY_PAIR_GEN',
    generateMechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN,
    publicTemplate: [
      { type: pkcs11js.CKA_MODULUS_BITS, value: 3072 },
      { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
    ],
    signMechanismName: 'CKM_SHA256_RSA_PKCS',
    signMechanism: pkcs11js.CKM_SHA256_RSA_PKCS,
    signatureBytes: 384,
    prepare: (data) => Buffer.from(data),
  },
  Ed25519: {
    keyType: 'Ed25519',
    generateMechanismName: 'CKM_EC_EDWARDS_KEY_PAIR_GEN',
    generateMechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN,
    publicTemplate: [{ type: pkcs11js.CKA_EC_PARAMS, value: OID_ED25519 }],
    signMechanismName: 'CKM_EDDSA',
    signMechanism: CKM_EDDSA,
    signatureBytes: 64,
    prepare: (data) => Buffer.from(data),
  },
});

/**
 * The key type of a key from its CKA_KEY_TYPE and CKA_EC_PARAMS / CKA_MODULUS, or null if it is
 * not one credbroker uses.
 */
export function keyTypeFromAttributes(ckKeyType: number, ecParams: Buffer | null, modulus: Buffer | null): KeyType | null {
  if (ckKeyType === pkcs11js.CKK_EC && ecParams !== null) {
    if (ecParams.equals(OID_P256)) return 'P-256';
    if (ecParams.equals(OID_P384)) return 'P-384';
    return null;
  }
  if (ckKeyType === CKK_EC_EDWARDS) return 'Ed25519';
  if (ckKeyType === pkcs11js.CKK_RSA && modulus !== null) {
    return unsignedLength(modulus) * 8 === 3072 ? 'RSA-3072' : null;
  }
  return null;
}

/**
 * Builds the public key from the public key object's attributes.
 * @param ecPoint CKA_EC_POINT (EC and Ed25519): a DER OCTET STRING, or the raw point on modules
 *   that skip the wrapper
 * @throws RangeError if the attributes do not form a key of that type
 */
export function publicKeyFromAttributes(
  keyType: KeyType,
  attributes: { ecPoint?: Buffer; modulus?: Buffer; publicExponent?: Buffer },
): KeyObject {
  const b64u = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
  switch (keyType) {
    case 'P-256':
    case 'P-384': {
      const fieldBytes = keyType === 'P-256' ? 32 : 48;
      const point = unwrapPoint(attributes.ecPoint, 1 + 2 * fieldBytes);
      if (point[0] !== 0x04) throw new RangeError('EC point is not in uncompressed form');
      return createPublicKey({
        key: { kty: 'EC', crv: keyType, x: b64u(point.subarray(1, 1 + fieldBytes)), y: b64u(point.subarray(1 + fieldBytes)) },
        format: 'jwk',
      });
    }
    case 'Ed25519':
      return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(unwrapPoint(attributes.ecPoint, 32)) }, format: 'jwk' });
    case 'RSA-3072': {
      if (attributes.modulus === undefined || attributes.publicExponent === undefined) {
        throw new RangeError('RSA public key needs CKA_MODULUS and CKA_PUBLIC_EXPONENT');
      }
      return createPublicKey({
        key: { kty: 'RSA', n: b64u(stripZeros(attributes.modulus)), e: b64u(stripZeros(attributes.publicExponent)) },
        format: 'jwk',
      });
    }
  }
}

function unwrapPoint(ecPoint: Buffer | undefined, rawLength: number): Buffer {
  if (ecPoint === undefined) throw new RangeError('public key has no CKA_EC_POINT');
  if (ecPoint.length === rawLength && (rawLength === 32 || ecPoint[0] === 0x04)) return ecPoint;
  const reader = new DerReader(ecPoint);
  const point = Buffer.from(reader.read(0x04));
  reader.end();
  if (point.length !== rawLength) throw new RangeError(`EC point has ${point.length} bytes, expected ${rawLength}`);
  return point;
}

function stripZeros(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  return bytes.subarray(start);
}

function unsignedLength(bytes: Buffer): number {
  return stripZeros(bytes).length;
}
