/**
 * An issuing CA as the builders need it: its certificate's fields checked against the Signer
 * that holds its key, its key identifier, and the SignerCrypto that lets @peculiar/x509 sign
 * through it.
 */
import type { KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { Signer } from '../core/index.js';
import { fieldsOf, findExtension, publicKeyOf, type CertificateFields } from './certificate-fields.js';
import { decodeBasicConstraints, decodeKeyUsage, decodeSubjectKeyIdentifier, type BasicConstraints } from './extension-values.js';
import { keyIdentifierOf } from './key-identifier.js';
import { KEY_USAGE_BITS } from './key-usage.js';
import { ExtensionOid } from './oids.js';
import { internal } from './pki-error.js';
import { SignerCrypto } from './signer-crypto.js';

/** A CA ready to sign: certificate fields, key identifier, signing adapter. */
export interface Issuer {
  readonly certificate: x509.X509Certificate;
  readonly fields: CertificateFields;
  /** The issuer's subject, to be written as the issuer of what it signs (same bytes). */
  readonly name: x509.Name;
  /** Its subjectKeyIdentifier (what authorityKeyIdentifier must repeat). */
  readonly keyId: Uint8Array;
  readonly basicConstraints: BasicConstraints;
  readonly signerCrypto: SignerCrypto;
}

/** What the issuer is about to sign: a certificate needs keyCertSign, a CRL cRLSign. */
export type IssuerPurpose = 'certificate' | 'crl';

const adapters = new WeakMap<Signer, Promise<SignerCrypto>>();

/**
 * The SignerCrypto of a Signer, created once per Signer (importing the public key costs a
 * little on every call otherwise).
 */
export function signerCryptoFor(signer: Signer): Promise<SignerCrypto> {
  let adapter = adapters.get(signer);
  if (adapter === undefined) {
    adapter = SignerCrypto.create(signer);
    adapters.set(signer, adapter);
    adapter.catch(() => adapters.delete(signer));
  }
  return adapter;
}

/**
 * Checks that `signer` holds the key of `certificate` and that the certificate may sign for
 * `purpose` (cA TRUE; keyCertSign or cRLSign), and returns the issuer.
 * @throws BrokerError internal `pki.issuer_key_mismatch`, `pki.issuer_not_ca`,
 *   `pki.issuer_key_usage` or `pki.issuer_certificate`: these are configuration errors, never
 *   the caller's
 */
export async function prepareIssuer(signer: Signer, certificate: x509.X509Certificate, purpose: IssuerPurpose): Promise<Issuer> {
  let fields: CertificateFields;
  let publicKey: KeyObject;
  try {
    fields = fieldsOf(certificate);
    publicKey = publicKeyOf(fields);
  } catch (error) {
    throw internal('pki.issuer_certificate', `the issuer certificate cannot be read: ${(error as Error).message}`, error);
  }
  if (!publicKey.equals(signer.publicKey)) {
    throw internal(
      'pki.issuer_key_mismatch',
      `${signer.description} does not hold the key of the issuer certificate ${certificate.subject} (serial ${fields.serialNumber})`,
    );
  }
  const constraints = findExtension(fields, ExtensionOid.basicConstraints);
  const basicConstraints = constraints === undefined ? { ca: false } : decodeOrFail(() => decodeBasicConstraints(constraints.value), certificate);
  if (!basicConstraints.ca) {
    throw internal('pki.issuer_not_ca', `the issuer certificate ${certificate.subject} is not a CA (basicConstraints cA is not TRUE)`);
  }
  const usage = findExtension(fields, ExtensionOid.keyUsage);
  const needed = purpose === 'certificate' ? 'keyCertSign' : 'cRLSign';
  if (usage !== undefined && !decodeOrFail(() => decodeKeyUsage(usage.value), certificate).has(KEY_USAGE_BITS[needed])) {
    throw internal('pki.issuer_key_usage', `the issuer certificate ${certificate.subject} lacks keyUsage ${needed}`);
  }
  const ski = findExtension(fields, ExtensionOid.subjectKeyIdentifier);
  const keyId = ski === undefined ? keyIdentifierOf(fields.spki) : decodeOrFail(() => decodeSubjectKeyIdentifier(ski.value), certificate);
  return {
    certificate,
    fields,
    name: new x509.Name(fields.subjectRaw),
    keyId,
    basicConstraints,
    signerCrypto: await signerCryptoFor(signer),
  };
}

function decodeOrFail<T>(decode: () => T, certificate: x509.X509Certificate): T {
  try {
    return decode();
  } catch (error) {
    throw internal('pki.issuer_certificate', `the issuer certificate ${certificate.subject} has a malformed extension: ${(error as Error).message}`, error);
  }
}
