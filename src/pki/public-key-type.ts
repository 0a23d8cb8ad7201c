/**
 * Which public keys credbroker certifies for services, and how keys are named in messages.
 *
 * Accepted leaf keys: P-256, P-384, Ed25519, and RSA of 2048–8192 bits with public exponent
 * 65537. Refused, by name: other curves (P-192 and secp256k1 are weak or unsupported by the
 * verifiers in use; P-521 is not supported by all TLS stacks and not needed), RSA below 2048
 * bits (factorable) or above 8192 (a verification-cost lever for an attacker), other
 * exponents, RSA-PSS-only keys, DSA, Ed448, X25519/X448 (not signature keys).
 */
import type { KeyObject } from 'node:crypto';

/** Key types a leaf certificate may certify. */
export type LeafKeyType = 'P-256' | 'P-384' | 'Ed25519' | 'RSA';

/** Smallest RSA modulus accepted for leaves, in bits. */
export const MIN_RSA_BITS = 2048;
/** Largest RSA modulus accepted for leaves, in bits (verification cost grows with it). */
export const MAX_RSA_BITS = 8192;

/** Human names of curves node reports by their OpenSSL names. */
const CURVE_NAMES: Readonly<Record<string, string>> = Object.freeze({
  prime192v1: 'P-192 (prime192v1)',
  secp224r1: 'P-224 (secp224r1)',
  prime256v1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521 (secp521r1)',
  secp256k1: 'secp256k1',
});

/** Names a public key for a message, e.g. `RSA 1024-bit`, `EC P-192 (prime192v1)`, `Ed448`. */
export function describeKey(publicKey: KeyObject): string {
  const details = publicKey.asymmetricKeyDetails;
  switch (publicKey.asymmetricKeyType) {
    case 'rsa':
      return `RSA ${details?.modulusLength ?? '?'}-bit`;
    case 'rsa-pss':
      return `RSA-PSS ${details?.modulusLength ?? '?'}-bit`;
    case 'ec': {
      const curve = details?.namedCurve;
      return curve === undefined ? 'EC with explicit curve parameters' : `EC ${CURVE_NAMES[curve] ?? curve}`;
    }
    case 'ed25519':
      return 'Ed25519';
    case 'ed448':
      return 'Ed448';
    case 'dsa':
      return 'DSA';
    case undefined:
      return 'a key of unknown type';
    default:
      return publicKey.asymmetricKeyType.toUpperCase();
  }
}

/**
 * The leaf key type of a public key, or a phrase saying why it is refused.
 */
export function leafKeyTypeOf(publicKey: KeyObject): LeafKeyType | { problem: string } {
  const details = publicKey.asymmetricKeyDetails;
  const refuse = (why: string): { problem: string } => ({ problem: `${describeKey(publicKey)} key ${why}` });
  switch (publicKey.asymmetricKeyType) {
    case 'ec':
      if (details?.namedCurve === 'prime256v1') return 'P-256';
      if (details?.namedCurve === 'secp384r1') return 'P-384';
      return refuse('is not accepted: use P-256, P-384, Ed25519 or RSA (2048 bits or more)');
    case 'ed25519':
      return 'Ed25519';
    case 'rsa': {
      const bits = details?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) return refuse(`is too small: RSA keys need at least ${MIN_RSA_BITS} bits`);
      if (bits > MAX_RSA_BITS) return refuse(`is too large: RSA keys may have at most ${MAX_RSA_BITS} bits`);
      if (details?.publicExponent !== 65537n) return refuse('has a public exponent other than 65537');
      return 'RSA';
    }
    default:
      return refuse('is not accepted: use P-256, P-384, Ed25519 or RSA (2048 bits or more)');
  }
}
