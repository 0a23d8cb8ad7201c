/**
 * Cross certificates for a root renewal (RFC 4210 §4.4 "root CA key update"): the old root's
 * key certifies the new root's key (NewWithOld), and the new root's key certifies the old
 * one's (OldWithNew), so that a peer trusting either root accepts chains through the other.
 *
 * Profile: the root profile (basicConstraints cA TRUE, pathLenConstraint 1, critical;
 * keyUsage keyCertSign | cRLSign, critical), with the subject's name and key copied from the
 * certified root, subjectKeyIdentifier of the certified key and authorityKeyIdentifier of the
 * issuing root's key. Old and new root share one subject name: the cross certificate is then
 * self-issued, and RFC 5280 §6.1.4 (l) does not count it against the issuing root's
 * pathLenConstraint 1 — a cross certificate of another name would be counted, and every peer
 * trusting only the old root would refuse root → cross → intermediate → leaf.
 */
import type * as x509 from '@peculiar/x509';
import { X509CertificateGenerator } from '@peculiar/x509';
import type { RandomSource, Signer } from '../core/index.js';
import { fieldsOf } from './certificate-fields.js';
import { prepareIssuer } from './issuer.js';
import { keyIdentifierOf } from './key-identifier.js';
import { invalid } from './pki-error.js';
import { authorityKeyIdentifierExtension, basicConstraintsExtension, keyUsageExtension, subjectKeyIdentifierExtension } from './profile-extensions.js';
import { ROOT_PATH_LENGTH } from './root-certificate.js';
import { newSerialNumber } from './serial-number.js';
import { checkCaValidity } from './validity.js';

/** What a cross certificate needs. */
export interface CrossCertificateRequest {
  /** The issuing root's key (in the HSM). */
  readonly issuerSigner: Signer;
  /** The issuing root's self-signed certificate. */
  readonly issuerCertificate: x509.X509Certificate;
  /** The other root's self-signed certificate: its subject and key are certified. */
  readonly subjectCertificate: x509.X509Certificate;
  readonly notBefore: Date;
  /** Must lie inside both roots' validity. */
  readonly notAfter: Date;
  /** For the serial number. */
  readonly random: RandomSource;
}

/**
 * Creates a cross certificate of `subjectCertificate`'s name and key, signed by the issuing root.
 * @throws BrokerError invalid `pki.cross_subject` (the two roots' subject names differ, byte for
 *   byte) or `pki.validity` (empty, or outside either root's validity); internal `pki.issuer_*`
 *   when the issuer certificate and signer do not fit (see {@link prepareIssuer})
 */
export async function createCrossCertificate(request: CrossCertificateRequest): Promise<x509.X509Certificate> {
  const issuer = await prepareIssuer(request.issuerSigner, request.issuerCertificate, 'certificate');
  const subject = fieldsOf(request.subjectCertificate);
  if (!Buffer.from(subject.subjectRaw).equals(issuer.fields.subjectRaw)) {
    throw invalid(
      'pki.cross_subject',
      `the roots' subjects differ (${request.subjectCertificate.subject} and ${request.issuerCertificate.subject}): a renewed root keeps its predecessor's name so that the cross certificate is self-issued and fits pathLenConstraint ${ROOT_PATH_LENGTH}`,
    );
  }
  checkCaValidity(request.notBefore, request.notAfter);
  for (const root of [issuer.fields, subject]) {
    if (request.notBefore.getTime() < root.notBefore.getTime() || request.notAfter.getTime() > root.notAfter.getTime()) {
      throw invalid('pki.validity', `the cross certificate (${request.notBefore.toISOString()} to ${request.notAfter.toISOString()}) must lie inside both roots' validity`);
    }
  }
  return X509CertificateGenerator.create(
    {
      serialNumber: newSerialNumber(request.random),
      subject: issuer.name,
      issuer: issuer.name,
      notBefore: request.notBefore,
      notAfter: request.notAfter,
      publicKey: new Uint8Array(subject.spki),
      signingKey: issuer.signerCrypto.signingKey,
      signingAlgorithm: issuer.signerCrypto.signingAlgorithm,
      extensions: [
        basicConstraintsExtension(true, ROOT_PATH_LENGTH),
        keyUsageExtension(['keyCertSign', 'cRLSign']),
        subjectKeyIdentifierExtension(keyIdentifierOf(subject.spki)),
        authorityKeyIdentifierExtension(issuer.keyId),
      ],
    },
    issuer.signerCrypto.crypto,
  );
}
