/**
 * A {@link Signer} over a software private key (node:crypto). For unit tests, tooling and
 * development only: production CA and token keys live in the HSM (DESIGN.md invariant 1).
 */
import { createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { ALGORITHM_OF_KEY_TYPE, digestOf, keyTypeOf, type KeyType, type SignatureAlgorithm, type Signer } from './signer.js';

/** A Signer whose private key is a node KeyObject in this process's memory. */
export class SoftwareSigner implements Signer {
  readonly algorithm: SignatureAlgorithm;
  readonly keyType: KeyType;
  readonly publicKey: KeyObject;
  readonly description: string;
  readonly #privateKey: KeyObject;

  /**
   * @param privateKey a P-256, P-384, RSA-3072 or Ed25519 private key
   * @throws RangeError for other key types
   */
  constructor(privateKey: KeyObject, description = 'software') {
    const publicKey = createPublicKey(privateKey);
    const keyType = keyTypeOf(publicKey);
    if (keyType === null) throw new RangeError('unsupported key type for a software signer');
    this.#privateKey = privateKey;
    this.publicKey = publicKey;
    this.keyType = keyType;
    this.algorithm = ALGORITHM_OF_KEY_TYPE[keyType];
    this.description = description;
  }

  /** Generates a fresh key of the given type. */
  static generate(keyType: KeyType, description = `software:${keyType}`): SoftwareSigner {
    return new SoftwareSigner(generatePrivateKey(keyType), description);
  }

  sign(data: Uint8Array): Promise<Uint8Array> {
    const isEcdsa = this.algorithm === 'ES256' || this.algorithm === 'ES384';
    const key = isEcdsa ? { key: this.#privateKey, dsaEncoding: 'ieee-p1363' as const } : this.#privateKey;
    return Promise.resolve(cryptoSign(digestOf(this.algorithm), data, key));
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
