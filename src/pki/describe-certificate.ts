/**
 * A short, loggable description of a certificate for error messages: its subject (or, for an
 * empty subject, its URI SAN) and serial number. Certificates hold no secrets, so this is safe
 * to show callers.
 */
import * as x509 from '@peculiar/x509';
import { findExtension, type CertificateFields } from './certificate-fields.js';
import { decodeGeneralNames } from './general-names.js';
import { ExtensionOid } from './oids.js';

/** E.g. `"CN=credbroker intermediate" (serial 3f…)` or `spiffe://td/blur (serial 5a…)`. */
export function describeCertificate(fields: CertificateFields): string {
  return `${nameOf(fields)} (serial ${fields.serialNumber})`;
}

function nameOf(fields: CertificateFields): string {
  if (!fields.subjectEmpty) {
    try {
      return `"${new x509.Name(fields.subjectRaw).toString()}"`;
    } catch {
      return 'an unreadable subject';
    }
  }
  const san = findExtension(fields, ExtensionOid.subjectAltName);
  if (san !== undefined) {
    try {
      const uri = decodeGeneralNames(san.value, 'subjectAltName').find((name) => name.kind === 'uniformResourceIdentifier');
      if (uri !== undefined) return uri.text;
    } catch {
      // fall through
    }
  }
  return 'a certificate with an empty subject';
}
