/**
 * PEM checks for tests that must prove a key is (or is not) somewhere, without writing any PEM
 * marker of a secret into the source: the keys themselves are made at test time.
 */
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';

/** The base64 lines of a PEM block long enough to be unique (its body), without the markers. */
export function pemBody(pem: string): string[] {
  return pem
    .split('\n')
    .filter((line) => line.length > 0 && !line.startsWith('-----'))
    .filter((line) => line.length >= 40);
}

/** True if `text` holds any body line of the PEM `secret`. */
export function containsPemBody(text: string, secret: string): boolean {
  return pemBody(secret).some((line) => text.includes(line));
}

/** True if `keyPem` is a private key whose public half is the public key of `certificatePem`. */
export function keyMatchesCertificate(keyPem: string, certificatePem: string): boolean {
  const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ format: 'der', type: 'spki' });
  const fromCertificate = new X509Certificate(certificatePem).publicKey.export({ format: 'der', type: 'spki' });
  return Buffer.compare(fromKey, fromCertificate) === 0;
}
