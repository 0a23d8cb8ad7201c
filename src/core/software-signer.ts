/**
 * A {@link Signer} over a WebCrypto key held in this process's memory (node's `webcrypto`).
 * For unit tests, tooling and development only: production CA and token keys live in the HSM
 * (DESIGN.md invariant 1). The private CryptoKey is imported non-extractable, so even here the
 * key cannot be read back through the Signer.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import { ALGORITHM_OF_KEY_TYPE, keyTypeOf, type KeyType, type SignatureAlgorithm, type Signer } from './signer.js';

/** WebCrypto parameters per key type: for importing the key and for signing. */
const WEBCRYPTO: Readonly<Record<KeyType, { importParams: webcrypto.AlgorithmIdentifier | webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams; signParams: webcrypto.AlgorithmIdentifier | webcrypto.EcdsaParams }>> =
  Object.freeze({
    'P-256': { importParams: { name: 'ECDSA', namedCurve: 'P-256' }, signParams: { name: 'ECDSA', hash: 'SHA-256' } },
    'P-384': { importParams: { name: 'ECDSA', namedCurve: 'P-384' }, signParams: { name: 'ECDSA', hash: 'SHA-384' } },
    'RSA-3072': { importParams: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, signParams: { name: 'RSASSA-PKCS1-v1_5' } },
    Ed25519: { importParams: { name: 'Ed25519' }, signParams: { name: 'Ed25519' } },
  });

/** A Signer whose private key is a non-extractable WebCrypto key in memory. */
export class SoftwareSigner implements Signer {
  readonly algorithm: SignatureAlgorithm;
  readonly keyType: KeyType;
  readonly publicKey: KeyObject;
  readonly description: string;
  readonly #privateKey: webcrypto.CryptoKey;

  private constructor(privateKey: webcrypto.CryptoKey, publicKey: KeyObject, keyType: KeyType, description: string) {
    this.#privateKey = privateKey;
    this.publicKey = publicKey;
    this.keyType = keyType;
    this.algorithm = ALGORITHM_OF_KEY_TYPE[keyType];
    this.description = description;
  }

  /**
   * Wraps a private key (a KeyObject or PKCS#8 DER), importing it into WebCrypto as
   * non-extractable.
   * @throws RangeError for key types credbroker does not use
   */
  static async fromPrivateKey(privateKey: KeyObject | Uint8Array, description = 'software'): Promise<SoftwareSigner> {
    const keyObject = privateKey instanceof Uint8Array ? createPrivateKey({ key: Buffer.from(privateKey), format: 'der', type: 'pkcs8' }) : privateKey;
    const publicKey = createPublicKey(keyObject);
    const keyType = keyTypeOf(publicKey);
    if (keyType === null) throw new RangeError('unsupported key type for a software signer: use P-256, P-384, RSA-3072 or Ed25519');
    const pkcs8 = keyObject.export({ format: 'der', type: 'pkcs8' });
    const cryptoKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, WEBCRYPTO[keyType].importParams, false, ['sign']);
    pkcs8.fill(0);
    return new SoftwareSigner(cryptoKey, publicKey, keyType, description);
  }

  /** Generates a fresh key of the given type. */
  static generate(keyType: KeyType, description = `software:${keyType}`): Promise<SoftwareSigner> {
    return SoftwareSigner.fromPrivateKey(generatePrivateKey(keyType), description);
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    // WebCrypto ECDSA already returns raw r || s, the Signer encoding.
    return new Uint8Array(await webcrypto.subtle.sign(WEBCRYPTO[this.keyType].signParams, this.#privateKey, data));
  }
}

function generatePrivateKey(keyType: KeyType): KeyObject {
  switch (keyType) {
    case 'P-256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'P-384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    case 'RSA-3072':
      return generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
    case 'Ed25519':
      return generateKeyPairSync('ed25519').privateKey;
  }
}
