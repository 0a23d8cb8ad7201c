/**
 * Verifies a certificate chain (leaf first, trusted root last) at a given instant, following
 * RFC 5280 §6.1 for what credbroker's PKI uses:
 * - the last certificate is one of `roots` (byte for byte);
 * - each certificate's issuer name equals the next one's subject and its signature verifies
 *   with the next one's key (ECDSA, RSA PKCS#1 v1.5, Ed25519; no SHA-1);
 * - every certificate, the root included, is valid at `at`;
 * - every issuing certificate has basicConstraints cA TRUE, keyCertSign if it has keyUsage,
 *   and a pathLenConstraint that the certificates below it respect;
 * - name constraints (URI, DNS, IP) of every CA hold for the SANs of the certificates below
 *   it; a constraint of another kind fails the chain (it cannot be checked here);
 * - no certificate has a critical extension credbroker does not process;
 * - optionally, the leaf's extKeyUsage allows a purpose.
 * Revocation is not checked here (the CRL is).
 */
import type { KeyObject } from 'node:crypto';
import type * as x509 from '@peculiar/x509';
import { fieldsOf, findExtension, publicKeyOf, type CertificateFields } from './certificate-fields.js';
import { describeCertificate } from './describe-certificate.js';
import { decodeBasicConstraints, decodeExtendedKeyUsage, decodeKeyUsage } from './extension-values.js';
import { decodeGeneralNames, type GeneralName } from './general-names.js';
import { KEY_USAGE_BITS } from './key-usage.js';
import { CHECKED_CONSTRAINT_KINDS, checkNameAgainstConstraints, decodeNameConstraints } from './name-constraints.js';
import { ExtendedKeyUsageOid, ExtensionOid, describeOid } from './oids.js';
import { invalid } from './pki-error.js';
import { verifySignedData } from './signed-data.js';

/** Options of {@link verifyChain}. */
export interface ChainVerificationOptions {
  /** When set, the leaf's extKeyUsage (if present) must allow this purpose. */
  readonly purpose?: 'serverAuth' | 'clientAuth';
}

/** Critical extensions this verifier processes; any other critical one fails the chain. */
const UNDERSTOOD_CRITICAL: ReadonlySet<string> = new Set([
  ExtensionOid.basicConstraints,
  ExtensionOid.keyUsage,
  ExtensionOid.extKeyUsage,
  ExtensionOid.subjectAltName,
  ExtensionOid.nameConstraints,
]);

/**
 * Verifies `chain` (leaf first, root last) against `roots` at `at`.
 * @throws BrokerError invalid with code `pki.chain_empty`, `pki.chain_malformed`,
 *   `pki.chain_untrusted`, `pki.chain_issuer`, `pki.chain_signature`, `pki.chain_expired`,
 *   `pki.chain_not_yet_valid`, `pki.chain_not_ca`, `pki.chain_key_usage`,
 *   `pki.chain_path_length`, `pki.chain_name_constraints`, `pki.chain_critical_extension` or
 *   `pki.chain_purpose`; the message names the failing certificate by position, role, subject
 *   (or SPIFFE ID) and serial
 */
export async function verifyChain(
  chain: readonly x509.X509Certificate[],
  roots: readonly x509.X509Certificate[],
  at: Date,
  options: ChainVerificationOptions = {},
): Promise<void> {
  if (chain.length === 0) throw invalid('pki.chain_empty', 'the certificate chain is empty');
  const fields = chain.map((certificate, index) => {
    try {
      return fieldsOf(certificate);
    } catch (error) {
      throw invalid('pki.chain_malformed', `certificate ${index} of the chain is malformed: ${(error as Error).message}`, error);
    }
  });
  const label = (index: number): string => {
    const role = index === 0 ? 'leaf' : index === chain.length - 1 ? 'root' : 'intermediate';
    return `certificate ${index} (${role}) ${describeCertificate(fields[index] as CertificateFields)}`;
  };
  const last = fields[fields.length - 1] as CertificateFields;
  const trusted = roots.some((root) => Buffer.from(root.rawData).equals(last.der));
  if (!trusted) throw invalid('pki.chain_untrusted', `the chain ends at ${label(fields.length - 1)}, which is not a trusted root`);

  for (const [index, current] of fields.entries()) {
    checkTime(current, at, label(index));
    for (const extension of current.extensions) {
      if (extension.critical && !UNDERSTOOD_CRITICAL.has(extension.oid)) {
        throw invalid('pki.chain_critical_extension', `${label(index)} has the critical extension ${describeOid(extension.oid)}, which is not processed`);
      }
    }
    if (!Buffer.from(current.innerAlgorithmRaw).equals(current.signed.algorithmRaw)) {
      throw invalid('pki.chain_malformed', `${label(index)} names different signature algorithms inside and outside its signed part`);
    }
    const issuer = fields[index + 1];
    if (issuer !== undefined) {
      if (!Buffer.from(current.issuerRaw).equals(issuer.subjectRaw)) {
        throw invalid('pki.chain_issuer', `${label(index)} was not issued by ${label(index + 1)}: issuer and subject names differ`);
      }
      if (!(await verifySignedData(current.signed, issuerKey(issuer, () => label(index + 1))))) {
        throw invalid('pki.chain_signature', `the signature of ${label(index)} does not verify with the key of ${label(index + 1)}`);
      }
    }
    if (index > 0) {
      checkIssuingCa(fields, index, label);
    }
  }
  if (options.purpose !== undefined) checkPurpose(fields[0] as CertificateFields, options.purpose, label(0));
}

function checkTime(fields: CertificateFields, at: Date, label: string): void {
  if (at.getTime() < fields.notBefore.getTime()) {
    throw invalid('pki.chain_not_yet_valid', `${label} is not valid before ${fields.notBefore.toISOString()} (checked at ${at.toISOString()})`);
  }
  if (at.getTime() > fields.notAfter.getTime()) {
    throw invalid('pki.chain_expired', `${label} expired at ${fields.notAfter.toISOString()} (checked at ${at.toISOString()})`);
  }
}

function issuerKey(fields: CertificateFields, label: () => string): KeyObject {
  try {
    return publicKeyOf(fields);
  } catch (error) {
    throw invalid('pki.chain_malformed', `the public key of ${label()} cannot be read`, error);
  }
}

function checkIssuingCa(fields: readonly CertificateFields[], index: number, label: (index: number) => string): void {
  const ca = fields[index] as CertificateFields;
  const decode = <T>(decoder: (value: Uint8Array) => T, oid: string): T | undefined => {
    const extension = findExtension(ca, oid);
    if (extension === undefined) return undefined;
    try {
      return decoder(extension.value);
    } catch (error) {
      throw invalid('pki.chain_malformed', `${label(index)} has a malformed ${describeOid(oid)}`, error);
    }
  };
  const constraints = decode(decodeBasicConstraints, ExtensionOid.basicConstraints);
  if (constraints?.ca !== true) throw invalid('pki.chain_not_ca', `${label(index)} issued ${label(index - 1)} but is not a CA (basicConstraints cA is not TRUE)`);
  const usage = decode(decodeKeyUsage, ExtensionOid.keyUsage);
  if (usage !== undefined && !usage.has(KEY_USAGE_BITS.keyCertSign)) {
    throw invalid('pki.chain_key_usage', `${label(index)} issued ${label(index - 1)} but its keyUsage lacks keyCertSign`);
  }
  if (constraints.pathLength !== undefined) {
    // Intermediate CAs below this one, not counting self-issued ones (RFC 5280 §6.1.4 (l)).
    let below = 0;
    for (let k = 1; k < index; k++) {
      const cert = fields[k] as CertificateFields;
      if (!Buffer.from(cert.issuerRaw).equals(cert.subjectRaw)) below++;
    }
    if (below > constraints.pathLength) {
      throw invalid('pki.chain_path_length', `${label(index)} allows ${constraints.pathLength} intermediate CA(s) below it, the chain has ${below}`);
    }
  }
  const nameConstraints = decode(decodeNameConstraints, ExtensionOid.nameConstraints);
  if (nameConstraints === undefined) return;
  const unchecked = [...nameConstraints.permitted, ...nameConstraints.excluded].find((name) => !CHECKED_CONSTRAINT_KINDS.has(name.kind));
  if (unchecked !== undefined) {
    throw invalid('pki.chain_name_constraints', `${label(index)} has a ${unchecked.kind} name constraint, which credbroker cannot check`);
  }
  for (let k = 0; k < index; k++) {
    const below = fields[k] as CertificateFields;
    // Self-issued intermediates are exempt (RFC 5280 §6.1.3 (b)); the leaf never is.
    if (k > 0 && Buffer.from(below.issuerRaw).equals(below.subjectRaw)) continue;
    for (const name of sanNames(below, label(k))) {
      const violation = checkNameAgainstConstraints(name, nameConstraints);
      if (violation !== null) {
        throw invalid('pki.chain_name_constraints', `${label(k)} violates the name constraints of ${label(index)}: ${violation}`);
      }
    }
  }
}

function sanNames(fields: CertificateFields, label: string): GeneralName[] {
  const san = findExtension(fields, ExtensionOid.subjectAltName);
  if (san === undefined) return [];
  try {
    return decodeGeneralNames(san.value, 'subjectAltName');
  } catch (error) {
    throw invalid('pki.chain_malformed', `${label} has a malformed subjectAltName`, error);
  }
}

function checkPurpose(leaf: CertificateFields, purpose: 'serverAuth' | 'clientAuth', label: string): void {
  const extension = findExtension(leaf, ExtensionOid.extKeyUsage);
  if (extension === undefined) return;
  let purposes: string[];
  try {
    purposes = decodeExtendedKeyUsage(extension.value);
  } catch (error) {
    throw invalid('pki.chain_malformed', `${label} has a malformed extKeyUsage`, error);
  }
  if (!purposes.includes(ExtendedKeyUsageOid[purpose]) && !purposes.includes(ExtendedKeyUsageOid.anyExtendedKeyUsage)) {
    throw invalid('pki.chain_purpose', `${label} is not valid for ${purpose} (its extended key usage does not include it)`);
  }
}
