/**
 * The self-signed root CA certificate, made in a key ceremony with the root key in the HSM.
 *
 * Profile (RFC 5280, X509-SVID §3.2): basicConstraints cA TRUE with pathLenConstraint 1
 * (root → intermediate → leaf, nothing deeper), critical; keyUsage keyCertSign | cRLSign,
 * critical; subjectKeyIdentifier; authorityKeyIdentifier equal to it (OpenSSL's -x509_strict
 * and most linters expect both on a self-signed CA). No extended key usage: a root is not used
 * for TLS.
 */
import type * as x509 from '@peculiar/x509';
import { X509CertificateGenerator } from '@peculiar/x509';
import { spkiOf, type RandomSource, type Signer } from '../core/index.js';
import { parseDistinguishedName } from './distinguished-name.js';
import { signerCryptoFor } from './issuer.js';
import { keyIdentifierOf } from './key-identifier.js';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  keyUsageExtension,
  subjectKeyIdentifierExtension,
} from './profile-extensions.js';
import { newSerialNumber } from './serial-number.js';
import { checkCaValidity } from './validity.js';

/** What a root certificate needs. */
export interface RootCertificateRequest {
  /** The root key (in the HSM). */
  readonly signer: Signer;
  /** RFC 4514 subject, e.g. `CN=credbroker root 2026,O=Example`; must not be empty. */
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** For the serial number. */
  readonly random: RandomSource;
}

/** pathLenConstraint of the root: one intermediate below it. */
export const ROOT_PATH_LENGTH = 1;

/**
 * Creates and signs (through `request.signer`) a self-signed root CA certificate.
 * @throws BrokerError invalid `pki.subject` (empty or malformed subject) or `pki.validity`
 *   (notBefore not before notAfter, or an invalid date); whatever the Signer throws
 */
export async function createRootCertificate(request: RootCertificateRequest): Promise<x509.X509Certificate> {
  const name = parseDistinguishedName(request.subject, 'root subject');
  checkCaValidity(request.notBefore, request.notAfter);
  const adapter = await signerCryptoFor(request.signer);
  const keyId = keyIdentifierOf(request.signer.publicKey);
  return X509CertificateGenerator.create(
    {
      serialNumber: newSerialNumber(request.random),
      subject: name,
      issuer: name,
      notBefore: request.notBefore,
      notAfter: request.notAfter,
      publicKey: spkiOf(request.signer.publicKey),
      signingKey: adapter.signingKey,
      signingAlgorithm: adapter.signingAlgorithm,
      extensions: [
        basicConstraintsExtension(true, ROOT_PATH_LENGTH),
        keyUsageExtension(['keyCertSign', 'cRLSign']),
        subjectKeyIdentifierExtension(keyId),
        authorityKeyIdentifierExtension(keyId),
      ],
    },
    adapter.crypto,
  );
}
