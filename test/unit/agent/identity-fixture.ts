/** Real PEM identities for file tests: a self-signed P-256 leaf with a SPIFFE ID, made in memory. */
import { KeyObject, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { IdentityPems } from '../../../src/agent/index.js';

export async function selfSignedPems(options: { spiffeId: string; notBefore: Date; notAfter: Date; serial?: string }): Promise<IdentityPems> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']));
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: options.serial ?? '3c1d2e4f5a6b7c8d9e0f112233445566',
      name: 'CN=unit test',
      notBefore: options.notBefore,
      notAfter: options.notAfter,
      keys,
      signingAlgorithm: algorithm,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: options.spiffeId }])],
    },
    webcrypto,
  );
  const privateKeyPem = KeyObject.from(keys.privateKey).export({ format: 'pem', type: 'pkcs8' }).toString();
  const pem = `${certificate.toString('pem')}\n`;
  return { privateKeyPem, certificatePem: pem, chainPem: pem, trustBundlePem: pem };
}
