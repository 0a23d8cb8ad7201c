/**
 * The HSM implementation of the {@link Signer} seam.
 *
 * Every signature is verified in software with the key's public half before it is returned
 * (SoftHSMv2 issue #901: CKM_ECDSA has been seen returning invalid signatures). An invalid one
 * is counted and retried once; a second invalid one fails with `hsm.bad_signature`. A CA that
 * hands out a certificate with a broken signature breaks every peer that receives it, so the
 * ~50 µs of verification is always worth it.
 */
import type { KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  ALGORITHM_OF_KEY_TYPE,
  BrokerError,
  verifySignatureAsync,
  type KeyType,
  type SignatureAlgorithm,
  type Signer,
} from '../core/index.js';
import type { HsmToken } from './hsm-token.js';

/** A Signer over one private key on an HSM token. */
export class HsmSigner implements Signer {
  readonly algorithm: SignatureAlgorithm;
  readonly keyType: KeyType;
  readonly publicKey: KeyObject;
  readonly description: string;
  /** Label of the key on the token. */
  readonly keyLabel: string;
  readonly #token: HsmToken;

  private constructor(token: HsmToken, keyLabel: string, keyType: KeyType, publicKey: KeyObject) {
    this.#token = token;
    this.keyLabel = keyLabel;
    this.keyType = keyType;
    this.publicKey = publicKey;
    this.algorithm = ALGORITHM_OF_KEY_TYPE[keyType];
    this.description = `hsm:${token.label}/${keyLabel}`;
  }

  /**
   * A signer for the key labelled `keyLabel` on `token`.
   * @param expectedKeyType when given, a key of another type is refused (`hsm.key_type_mismatch`)
   * @throws BrokerError `hsm.key_not_found` naming label and token; `hsm.key_unusable` when the
   *   key has no public key object or a type credbroker does not use
   */
  static async create(token: HsmToken, keyLabel: string, expectedKeyType?: KeyType): Promise<HsmSigner> {
    const info = await token.findKey(keyLabel);
    if (info.keyType === null || info.publicKey === null) {
      throw new BrokerError('conflict', {
        code: 'hsm.key_unusable',
        publicMessage: `key "${keyLabel}" on token "${token.label}" has no public key object or a key type credbroker does not use`,
        retryable: false,
      });
    }
    if (expectedKeyType !== undefined && info.keyType !== expectedKeyType) {
      throw new BrokerError('conflict', {
        code: 'hsm.key_type_mismatch',
        publicMessage: `key "${keyLabel}" on token "${token.label}" is ${info.keyType}, expected ${expectedKeyType}`,
        retryable: false,
      });
    }
    return new HsmSigner(token, keyLabel, info.keyType, info.publicKey);
  }

  /**
   * Signs on the HSM, verifies in software, retries once on an invalid signature.
   * @throws BrokerError `hsm.bad_signature` (internal) after two invalid signatures;
   *   `hsm.session_lost` (unavailable) while the token reconnects
   */
  async sign(data: Uint8Array): Promise<Uint8Array> {
    const token = this.#token;
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      let signature = await token.signRaw(this.keyLabel, this.keyType, data);
      const corrupt = token.testHooks.afterSign;
      if (corrupt !== undefined) signature = corrupt(signature, this.keyLabel);
      if (!token.verifyAfterSign || (await verifySignatureAsync(this.algorithm, this.publicKey, data, signature))) {
        token.stats.signatures++;
        token.signObserver?.signed(this.keyLabel, (performance.now() - started) / 1000);
        return signature;
      }
      token.stats.invalidSignatures++;
      if (attempt >= 2) {
        token.stats.failedSignatures++;
        throw new BrokerError('internal', {
          code: 'hsm.bad_signature',
          publicMessage: 'the HSM produced an invalid signature; the request was not completed',
          logMessage: `key "${this.keyLabel}" on token "${token.label}" returned an invalid ${this.algorithm} signature twice in a row; check the HSM (SoftHSMv2 #901)`,
          retryable: false,
        });
      }
      token.stats.retries++;
    }
  }
}
