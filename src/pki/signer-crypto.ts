/**
 * Lets @peculiar/x509 sign with a {@link Signer} (an HSM key) as if it were a WebCrypto key.
 *
 * @peculiar/x509 signs through `crypto.subtle.sign(algorithm, key, data)` and converts the
 * WebCrypto signature (ECDSA: raw `r || s`) to the X.509 encoding (DER `Ecdsa-Sig-Value`) itself.
 * A Signer returns exactly the WebCrypto form, so this adapter only routes `sign` calls made
 * with a {@link SignerCrypto.signingKey} to the Signer, and everything else to
 * @peculiar/webcrypto. No private key material ever passes through here.
 */
import type { webcrypto } from 'node:crypto';
import { Crypto as WebCrypto } from '@peculiar/webcrypto';
import { BrokerError, spkiOf, type SignatureAlgorithm, type Signer } from '../core/index.js';

type Algorithm = webcrypto.Algorithm;
type AlgorithmIdentifier = webcrypto.AlgorithmIdentifier;
type BufferSource = webcrypto.BufferSource;
type Crypto = webcrypto.Crypto;
type CryptoKey = webcrypto.CryptoKey;
type EcdsaParams = webcrypto.EcdsaParams;
type EcKeyImportParams = webcrypto.EcKeyImportParams;
type RsaHashedImportParams = webcrypto.RsaHashedImportParams;

/** WebCrypto parameters of each signature algorithm: for signing and for importing the key. */
export const WEBCRYPTO_ALGORITHMS: Readonly<Record<SignatureAlgorithm, { sign: Algorithm | EcdsaParams | RsaHashedImportParams; key: EcKeyImportParams | RsaHashedImportParams | Algorithm }>> =
  Object.freeze({
    ES256: { sign: { name: 'ECDSA', hash: 'SHA-256' }, key: { name: 'ECDSA', namedCurve: 'P-256' } },
    ES384: { sign: { name: 'ECDSA', hash: 'SHA-384' }, key: { name: 'ECDSA', namedCurve: 'P-384' } },
    RS256: { sign: { name: 'RSASSA-PKCS1-v1_5' }, key: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } },
    EdDSA: { sign: { name: 'Ed25519' }, key: { name: 'Ed25519' } },
  });

/** The hash each algorithm signs with, as WebCrypto names it (null: EdDSA hashes itself). */
const HASH_OF: Readonly<Record<SignatureAlgorithm, string | null>> = Object.freeze({ ES256: 'SHA-256', ES384: 'SHA-384', RS256: 'SHA-256', EdDSA: null });

/** A WebCrypto `Crypto` whose `subtle.sign` signs with a Signer for its stand-in key. */
export class SignerCrypto {
  /** Pass this object as the `crypto` argument of @peculiar/x509 generators. */
  readonly crypto: Crypto;
  /** Stand-in private key: give it as `signingKey` (or `keys.privateKey`). */
  readonly signingKey: CryptoKey;
  /** The Signer's public key as a WebCrypto key (for `publicKey` / `keys.publicKey`). */
  readonly publicKey: CryptoKey;
  /** Parameters to pass as `signingAlgorithm`. */
  readonly signingAlgorithm: Algorithm;
  readonly signer: Signer;

  private constructor(signer: Signer, base: Crypto, publicKey: CryptoKey) {
    this.signer = signer;
    this.publicKey = publicKey;
    const params = WEBCRYPTO_ALGORITHMS[signer.algorithm];
    this.signingAlgorithm = params.sign;
    // A CryptoKey-shaped marker; it holds nothing secret and only this adapter accepts it.
    this.signingKey = Object.freeze({ type: 'private', extractable: false, algorithm: publicKey.algorithm, usages: ['sign'] }) as CryptoKey;
    const signingKey = this.signingKey;
    const subtle = new Proxy(base.subtle, {
      get: (target, property, receiver) => {
        if (property === 'sign') {
          return (algorithm: AlgorithmIdentifier | EcdsaParams, key: CryptoKey, data: BufferSource): Promise<ArrayBuffer> => {
            if (key !== signingKey) return target.sign(algorithm, key, data);
            return this.#sign(algorithm, data);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    this.crypto = new Proxy(base, {
      get: (target, property, receiver) => {
        if (property === 'subtle') return subtle;
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** Wraps a Signer; imports its public key into @peculiar/webcrypto. */
  static async create(signer: Signer, base: Crypto = new WebCrypto() as unknown as Crypto): Promise<SignerCrypto> {
    const params = WEBCRYPTO_ALGORITHMS[signer.algorithm];
    const publicKey = await base.subtle.importKey('spki', spkiOf(signer.publicKey), params.key, true, ['verify']);
    return new SignerCrypto(signer, base, publicKey);
  }

  async #sign(algorithm: AlgorithmIdentifier | EcdsaParams, data: BufferSource): Promise<ArrayBuffer> {
    // Refuse a request for another hash: a certificate must say exactly how it was signed.
    const requested = typeof algorithm === 'string' ? undefined : (algorithm as Partial<EcdsaParams>).hash;
    const requestedHash = requested === undefined ? null : typeof requested === 'string' ? requested : requested.name;
    const expected = HASH_OF[this.signer.algorithm];
    if (requestedHash !== null && expected !== null && requestedHash.toUpperCase() !== expected) {
      throw new BrokerError('internal', {
        code: 'pki.algorithm_mismatch',
        publicMessage: 'internal error',
        logMessage: `asked to sign with ${requestedHash}, but ${this.signer.description} signs ${this.signer.algorithm}`,
      });
    }
    const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
    const signature = await this.signer.sign(bytes);
    return new Uint8Array(signature).buffer;
  }
}
