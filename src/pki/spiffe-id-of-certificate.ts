/**
 * The SPIFFE ID of a leaf certificate (an X.509 SVID), validated as X509-SVID §5.2 asks of
 * relying parties: exactly one URI SAN, a SPIFFE ID with a path, cA not TRUE, and neither
 * keyCertSign nor cRLSign. Use it after {@link verifyChain} to learn who a peer is.
 */
import type * as x509 from '@peculiar/x509';
import { isBrokerError } from '../core/index.js';
import { fieldsOf, findExtension, type CertificateFields } from './certificate-fields.js';
import { decodeBasicConstraints, decodeKeyUsage } from './extension-values.js';
import { decodeGeneralNames, type GeneralName } from './general-names.js';
import { KEY_USAGE_BITS } from './key-usage.js';
import { ExtensionOid } from './oids.js';
import { invalid } from './pki-error.js';
import { parseSpiffeId, type SpiffeId } from './spiffe-id.js';

/**
 * Reads the SPIFFE ID of a leaf certificate. Does not verify the certificate's chain.
 * @throws BrokerError invalid `pki.svid` saying why the certificate is not a leaf SVID
 */
export function spiffeIdOfCertificate(certificate: x509.X509Certificate): SpiffeId {
  const svid = (problem: string, cause?: unknown): Error => invalid('pki.svid', `the certificate ${problem}`, cause);
  let fields: CertificateFields;
  let ca: boolean;
  let usage: Set<number>;
  let uris: GeneralName[];
  try {
    fields = fieldsOf(certificate);
    const constraints = findExtension(fields, ExtensionOid.basicConstraints);
    ca = constraints !== undefined && decodeBasicConstraints(constraints.value).ca;
    const keyUsage = findExtension(fields, ExtensionOid.keyUsage);
    usage = keyUsage === undefined ? new Set() : decodeKeyUsage(keyUsage.value);
    const san = findExtension(fields, ExtensionOid.subjectAltName);
    uris = san === undefined ? [] : decodeGeneralNames(san.value, 'subjectAltName').filter((name) => name.kind === 'uniformResourceIdentifier');
  } catch (error) {
    throw svid('is malformed', error);
  }
  if (ca) throw svid('is a CA certificate, not a leaf');
  if (usage.has(KEY_USAGE_BITS.keyCertSign) || usage.has(KEY_USAGE_BITS.cRLSign)) throw svid('has keyCertSign or cRLSign: it is not a leaf');
  const [uri, ...more] = uris;
  if (uri === undefined || more.length > 0) throw svid(`has ${uris.length} URI SANs; an X.509 SVID has exactly one`);
  let id: SpiffeId;
  try {
    id = parseSpiffeId(uri.text);
  } catch (error) {
    throw svid(`has a URI SAN that is not a SPIFFE ID: ${isBrokerError(error) ? error.publicMessage : 'unreadable'}`, error);
  }
  if (id.path === '') throw svid(`names ${id.toString()}, which has no path`);
  return id;
}
