/**
 * The extensions of credbroker's certificate and CRL profiles, encoded here byte by byte
 * (DER defaults omitted, named bit lists trimmed) and wrapped as @peculiar/x509 Extensions.
 */
import * as x509 from '@peculiar/x509';
import { derBoolean, derInteger, derNamedBits, derOctetString, derOid, derContext, derSequence } from './der-writer.js';
import { encodeGeneralNames, type EncodableName } from './general-names.js';
import { KEY_USAGE_BITS, type KeyUsageName } from './key-usage.js';
import { encodeNameConstraints } from './name-constraints.js';
import { ExtensionOid } from './oids.js';

/**
 * basicConstraints, always critical (RFC 5280 §4.2.1.9 for CAs; credbroker marks leaves too,
 * as the SPIFFE X509-SVID profile does). `cA FALSE` is the empty SEQUENCE in DER.
 */
export function basicConstraintsExtension(ca: boolean, pathLength?: number): x509.Extension {
  const parts = ca ? [derBoolean(true), ...(pathLength === undefined ? [] : [derInteger(pathLength)])] : [];
  return new x509.Extension(ExtensionOid.basicConstraints, true, derSequence(...parts));
}

/** keyUsage, critical (RFC 5280 §4.2.1.3 SHOULD; the X509-SVID profile MUST). */
export function keyUsageExtension(usages: readonly KeyUsageName[]): x509.Extension {
  return new x509.Extension(ExtensionOid.keyUsage, true, derNamedBits(usages.map((usage) => KEY_USAGE_BITS[usage])));
}

/** extKeyUsage, not critical. */
export function extendedKeyUsageExtension(purposes: readonly string[]): x509.Extension {
  return new x509.Extension(ExtensionOid.extKeyUsage, false, derSequence(...purposes.map(derOid)));
}

/** subjectKeyIdentifier, not critical (RFC 5280 §4.2.1.2: MUST NOT be critical). */
export function subjectKeyIdentifierExtension(keyId: Uint8Array): x509.Extension {
  return new x509.Extension(ExtensionOid.subjectKeyIdentifier, false, derOctetString(keyId));
}

/** authorityKeyIdentifier with keyIdentifier only, not critical (RFC 5280 §4.2.1.1). */
export function authorityKeyIdentifierExtension(keyId: Uint8Array): x509.Extension {
  return new x509.Extension(ExtensionOid.authorityKeyIdentifier, false, derSequence(derContext(0, keyId)));
}

/**
 * subjectAltName. Critical when the subject is empty (RFC 5280 §4.2.1.6), else not.
 * @throws RangeError if `names` is empty
 */
export function subjectAltNameExtension(names: readonly EncodableName[], critical: boolean): x509.Extension {
  return new x509.Extension(ExtensionOid.subjectAltName, critical, encodeGeneralNames(names));
}

/** nameConstraints with permitted subtrees, critical (RFC 5280 §4.2.1.10: MUST be critical). */
export function nameConstraintsExtension(permitted: readonly EncodableName[]): x509.Extension {
  return new x509.Extension(ExtensionOid.nameConstraints, true, encodeNameConstraints(permitted));
}

/** cRLNumber, not critical (RFC 5280 §5.2.3). */
export function crlNumberExtension(crlNumber: bigint): x509.Extension {
  return new x509.Extension(ExtensionOid.crlNumber, false, derInteger(crlNumber));
}
