/**
 * Checks a certificate signing request (PKCS#10, RFC 2986) from a service before anything is
 * issued for it (DESIGN.md invariant 2: the broker checks proof of possession).
 *
 * What is checked, in order, each failure a BrokerError of kind invalid with a message that says
 * what was wrong:
 * 1. size (at most {@link MAX_CSR_BYTES} of DER) and form: PEM or DER, strict DER, version 1;
 * 2. the key: P-256, P-384, Ed25519 or RSA 2048–8192 bits (others refused by name);
 * 3. the signature algorithm (no SHA-1/MD5) and the signature itself: proof of possession;
 * 4. attributes: only extensionRequest;
 * 5. requested extensions, an allow-list of harmless requests:
 *    - subjectAltName with DNS names, IP addresses and at most one URI, which must be a SPIFFE
 *      ID (other name kinds refused);
 *    - keyUsage with digitalSignature, keyEncipherment, keyAgreement only (keyCertSign or
 *      cRLSign → `pki.csr_ca_requested`);
 *    - extKeyUsage with serverAuth, clientAuth only;
 *    - basicConstraints with cA FALSE (cA TRUE → `pki.csr_ca_requested`);
 *    - subjectKeyIdentifier (ignored: credbroker computes its own).
 *    Anything else → `pki.csr_extension` naming the OID.
 *
 * The CSR's subject is ignored, and its SAN requests grant nothing: the issued identity comes
 * from the caller's authorization and policy (see issueLeafCertificate), never from the CSR.
 * The requested keyUsage and extKeyUsage are ignored too: the certificate profile decides.
 */
import type { KeyObject } from 'node:crypto';
import type { BrokerError } from '../core/index.js';
import { parseExtension, type RawExtension } from './certificate-fields.js';
import { DerCursor, DerError, DerTag, derChildren, derDecodeInteger, derDecodeOid, derParseSingle } from './der-reader.js';
import { dnsNameProblem } from './dns-name.js';
import { decodeBasicConstraints, decodeExtendedKeyUsage, decodeKeyUsage, decodeSubjectKeyIdentifier } from './extension-values.js';
import { decodeGeneralNames } from './general-names.js';
import { KEY_USAGE_BITS, keyUsageName } from './key-usage.js';
import { CsrAttributeOid, ExtendedKeyUsageOid, ExtensionOid, describeOid } from './oids.js';
import { invalid } from './pki-error.js';
import { importPublicKeySpki } from './public-key-spki.js';
import { describeKey, leafKeyTypeOf, type LeafKeyType } from './public-key-type.js';
import { parseSignedData, signatureSchemeOf, verifySignedData, type SignedData } from './signed-data.js';
import { parseSpiffeId } from './spiffe-id.js';

/** Largest CSR accepted, in bytes of DER (16 KiB: a CSR with a 8192-bit RSA key and many SANs fits). */
export const MAX_CSR_BYTES = 16 * 1024;

/** A CSR that passed {@link checkCsr}. Every array is frozen. */
export interface CheckedCsr {
  /** The key to certify. */
  readonly publicKey: KeyObject;
  readonly keyType: LeafKeyType;
  /** DNS SANs the CSR asks for, lowercased (granted only if policy allows them). */
  readonly requestedDnsNames: readonly string[];
  /** IP SANs the CSR asks for, in canonical text (granted only if policy allows them). */
  readonly requestedIpAddresses: readonly string[];
  /** URI SANs the CSR asks for: at most one, a SPIFFE ID (must equal the authorized one). */
  readonly requestedUris: readonly string[];
  /** The CSR's DER. */
  readonly der: Uint8Array;
}

/** keyUsage bits a CSR may ask for (all ignored; the profile decides). */
const HARMLESS_KEY_USAGES: ReadonlySet<number> = new Set([
  KEY_USAGE_BITS.digitalSignature,
  KEY_USAGE_BITS.keyEncipherment,
  KEY_USAGE_BITS.keyAgreement,
]);
const CA_KEY_USAGES: ReadonlySet<number> = new Set([KEY_USAGE_BITS.keyCertSign, KEY_USAGE_BITS.cRLSign]);
const HARMLESS_PURPOSES: ReadonlySet<string> = new Set([ExtendedKeyUsageOid.serverAuth, ExtendedKeyUsageOid.clientAuth]);
const ALLOWED_EXTENSIONS = 'subjectAltName, keyUsage, extKeyUsage, basicConstraints (cA FALSE), subjectKeyIdentifier';

const PEM = /^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n\t ]*)-----END \1CERTIFICATE REQUEST-----\s*$/;

/**
 * Checks a CSR: form, key, proof of possession and requested extensions (see the module
 * comment for the exact rules).
 * @param csr DER bytes, or PEM text (`-----BEGIN CERTIFICATE REQUEST-----`) as a string or bytes
 * @throws BrokerError invalid, code `pki.csr_too_large`, `pki.csr_pem`, `pki.csr_malformed`,
 *   `pki.csr_key_type`, `pki.csr_signature_algorithm`, `pki.csr_signature`, `pki.csr_attribute`,
 *   `pki.csr_extension`, `pki.csr_ca_requested` or `pki.csr_san`; never anything else for bad
 *   input
 */
export async function checkCsr(csr: Uint8Array | string): Promise<CheckedCsr> {
  const der = toDer(csr);
  let signed: SignedData;
  let info: { spki: Uint8Array; attributes: Uint8Array };
  try {
    signed = parseSignedData(der, 'CSR');
    info = parseRequestInfo(signed.tbs);
  } catch (error) {
    throw malformed(error);
  }

  const publicKey = await readPublicKey(info.spki);
  const keyType = leafKeyTypeOf(publicKey);
  if (typeof keyType !== 'string') throw invalid('pki.csr_key_type', `the CSR's ${keyType.problem}`);

  const scheme = signatureSchemeOf(signed.algorithmOid, signed.algorithmParameters);
  if (typeof scheme === 'string') throw invalid('pki.csr_signature_algorithm', `the CSR ${scheme}`);
  if (scheme.keyAlgorithm !== publicKey.asymmetricKeyType) {
    throw invalid('pki.csr_signature_algorithm', `the CSR is signed with ${describeOid(signed.algorithmOid)}, which does not fit its ${describeKey(publicKey)} key`);
  }
  if (!(await verifySignedData(signed, publicKey))) {
    throw invalid('pki.csr_signature', "the CSR's signature does not verify with its public key: no proof of possession of the private key");
  }

  const extensions = readExtensionRequest(info.attributes);
  const requested = checkExtensions(extensions);
  return Object.freeze({
    publicKey,
    keyType,
    requestedDnsNames: Object.freeze(requested.dnsNames),
    requestedIpAddresses: Object.freeze(requested.ipAddresses),
    requestedUris: Object.freeze(requested.uris),
    der: new Uint8Array(der),
  });
}

function toDer(csr: Uint8Array | string): Uint8Array {
  const looksPem = typeof csr === 'string' || Buffer.from(csr.subarray(0, 64)).toString('latin1').trimStart().startsWith('-----BEGIN');
  if (!looksPem) {
    const bytes = csr;
    if (bytes.length > MAX_CSR_BYTES) throw tooLarge(bytes.length);
    if (bytes.length === 0) throw invalid('pki.csr_malformed', 'the CSR is empty');
    return bytes;
  }
  const text = typeof csr === 'string' ? csr : Buffer.from(csr).toString('latin1');
  // PEM is 4/3 of the DER plus line breaks: a bound before any regular expression runs.
  if (text.length > 2 * MAX_CSR_BYTES) throw tooLarge(Math.floor((text.length * 3) / 4));
  const match = PEM.exec(text);
  if (match === null) {
    throw invalid('pki.csr_pem', 'the CSR is not a single PEM block "-----BEGIN CERTIFICATE REQUEST-----" … "-----END CERTIFICATE REQUEST-----" (or DER bytes)');
  }
  const body = (match[2] ?? '').replace(/\s+/g, '');
  const der = Buffer.from(body, 'base64');
  if (body.length === 0 || der.toString('base64') !== body) throw invalid('pki.csr_pem', "the CSR's PEM body is not valid base64");
  if (der.length > MAX_CSR_BYTES) throw tooLarge(der.length);
  return der;
}

function tooLarge(bytes: number): BrokerError {
  return invalid('pki.csr_too_large', `the CSR is ${bytes} bytes; at most ${MAX_CSR_BYTES} bytes are accepted`);
}

function malformed(error: unknown): BrokerError {
  const detail = error instanceof DerError ? error.message : 'unreadable';
  return invalid('pki.csr_malformed', `the CSR is not a well-formed DER PKCS#10 request (${detail})`, error);
}

/** CertificationRequestInfo ::= SEQUENCE { version 0, subject, subjectPKInfo, [0] attributes } */
function parseRequestInfo(tbs: Uint8Array): { spki: Uint8Array; attributes: Uint8Array } {
  const what = 'CSR';
  const info = derChildren(derParseSingle(tbs, DerTag.sequence, 'certificationRequestInfo'), what);
  const version = derDecodeInteger(info.read(DerTag.integer, 'version').content, what);
  if (version !== 0n) throw new DerError(`${what}: version ${version + 1n} is not PKCS#10 version 1`);
  info.read(DerTag.sequence, 'subject');
  const spki = info.read(DerTag.sequence, 'subjectPKInfo').raw;
  const attributes = info.read(0xa0, 'attributes').content;
  info.end();
  return { spki, attributes };
}

/** The CSR's key; its SPKI is remembered for the certificate (see public-key-spki.ts). */
async function readPublicKey(spki: Uint8Array): Promise<KeyObject> {
  try {
    return await importPublicKeySpki(spki);
  } catch (error) {
    let algorithm = 'unknown';
    try {
      const body = derChildren(derParseSingle(spki, DerTag.sequence, 'subjectPKInfo'), 'CSR');
      const algorithmId = derChildren(body.read(DerTag.sequence, 'algorithm'), 'CSR');
      algorithm = derDecodeOid(algorithmId.read(DerTag.oid, 'algorithm').content);
    } catch {
      // The OID is only for the message.
    }
    throw invalid('pki.csr_key_type', `the CSR's public key (algorithm ${algorithm}) cannot be read or is of an unsupported type: use P-256, P-384, Ed25519 or RSA (2048 bits or more)`, error);
  }
}

function readExtensionRequest(attributes: Uint8Array): RawExtension[] {
  const found: RawExtension[] = [];
  let seenRequest = false;
  try {
    const cursor = new DerCursor(attributes, 'CSR attributes');
    while (!cursor.done) {
      const attribute = derChildren(cursor.read(DerTag.sequence, 'attribute'), 'CSR attribute');
      const oid = derDecodeOid(attribute.read(DerTag.oid, 'attribute type').content);
      const values = derChildren(attribute.read(DerTag.set, 'attribute values'), 'CSR attribute');
      attribute.end();
      if (oid !== CsrAttributeOid.extensionRequest) {
        throw invalid('pki.csr_attribute', `the CSR carries the attribute ${describeOid(oid)}; only extensionRequest (${CsrAttributeOid.extensionRequest}) is accepted`);
      }
      if (seenRequest) throw invalid('pki.csr_attribute', 'the CSR carries extensionRequest twice');
      seenRequest = true;
      const extensions = derChildren(values.read(DerTag.sequence, 'Extensions'), 'CSR extensionRequest');
      values.end();
      while (!extensions.done) found.push(parseExtension(extensions.read(DerTag.sequence, 'extension').content, 'CSR'));
    }
  } catch (error) {
    if (error instanceof DerError) throw malformed(error);
    throw error;
  }
  const seen = new Set<string>();
  for (const extension of found) {
    if (seen.has(extension.oid)) throw invalid('pki.csr_extension', `the CSR requests extension ${describeOid(extension.oid)} twice`);
    seen.add(extension.oid);
  }
  return found;
}

interface RequestedNames {
  dnsNames: string[];
  ipAddresses: string[];
  uris: string[];
}

function checkExtensions(extensions: readonly RawExtension[]): RequestedNames {
  const requested: RequestedNames = { dnsNames: [], ipAddresses: [], uris: [] };
  for (const extension of extensions) {
    try {
      checkExtension(extension, requested);
    } catch (error) {
      if (error instanceof DerError) {
        throw invalid('pki.csr_extension', `the CSR's requested ${describeOid(extension.oid)} is malformed (${error.message})`, error);
      }
      throw error;
    }
  }
  return requested;
}

function checkExtension(extension: RawExtension, requested: RequestedNames): void {
  switch (extension.oid) {
    case ExtensionOid.subjectAltName:
      checkSubjectAltName(extension.value, requested);
      return;
    case ExtensionOid.keyUsage:
      for (const bit of decodeKeyUsage(extension.value)) {
        if (CA_KEY_USAGES.has(bit)) {
          throw invalid('pki.csr_ca_requested', `the CSR requests keyUsage ${keyUsageName(bit)}, which only CA certificates carry`);
        }
        if (!HARMLESS_KEY_USAGES.has(bit)) {
          throw invalid('pki.csr_extension', `the CSR requests keyUsage ${keyUsageName(bit)}; only digitalSignature, keyEncipherment and keyAgreement may be requested`);
        }
      }
      return;
    case ExtensionOid.extKeyUsage:
      for (const purpose of decodeExtendedKeyUsage(extension.value)) {
        if (!HARMLESS_PURPOSES.has(purpose)) {
          throw invalid('pki.csr_extension', `the CSR requests extended key usage ${describeOid(purpose)}; only serverAuth and clientAuth may be requested`);
        }
      }
      return;
    case ExtensionOid.basicConstraints:
      if (decodeBasicConstraints(extension.value).ca) {
        throw invalid('pki.csr_ca_requested', 'the CSR requests basicConstraints cA TRUE: credbroker issues CA certificates only in key ceremonies');
      }
      return;
    case ExtensionOid.subjectKeyIdentifier:
      decodeSubjectKeyIdentifier(extension.value);
      return;
    default:
      throw invalid('pki.csr_extension', `the CSR requests extension ${describeOid(extension.oid)}, which credbroker does not issue; a CSR may request only ${ALLOWED_EXTENSIONS}`);
  }
}

function checkSubjectAltName(value: Uint8Array, requested: RequestedNames): void {
  for (const name of decodeGeneralNames(value, 'CSR subjectAltName')) {
    switch (name.kind) {
      case 'dNSName': {
        const problem = dnsNameProblem(name.text);
        if (problem !== null) throw invalid('pki.csr_san', `the CSR's DNS SAN "${name.text.slice(0, 260)}" ${problem}`);
        const lower = name.text.toLowerCase();
        if (!requested.dnsNames.includes(lower)) requested.dnsNames.push(lower);
        break;
      }
      case 'iPAddress':
        if (!requested.ipAddresses.includes(name.text)) requested.ipAddresses.push(name.text);
        break;
      case 'uniformResourceIdentifier': {
        try {
          parseSpiffeId(name.text);
        } catch (error) {
          throw invalid('pki.csr_san', `the CSR's URI SAN is not a valid SPIFFE ID: ${(error as BrokerError).publicMessage}`, error);
        }
        if (!requested.uris.includes(name.text)) requested.uris.push(name.text);
        if (requested.uris.length > 1) throw invalid('pki.csr_san', 'the CSR requests more than one URI SAN; a certificate carries exactly one SPIFFE ID');
        break;
      }
      default:
        throw invalid('pki.csr_san', `the CSR requests a ${name.kind} SAN; credbroker issues only the SPIFFE ID URI, DNS names and IP addresses`);
    }
  }
}
