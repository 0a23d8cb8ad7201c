/**
 * checkCsr as it was before the fast key import (src/pki/check-csr.ts at commit 234df38),
 * verbatim but for its name and import paths: the reference that the differential test and the
 * fuzzer compare checkCsr with. It reads keys with `createPublicKey` from DER. Tests only.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { BrokerError } from '../../../src/core/index.js';
import { parseExtension, type RawExtension } from '../../../src/pki/certificate-fields.js';
import { MAX_CSR_BYTES, type CheckedCsr } from '../../../src/pki/check-csr.js';
import { DerCursor, DerError, DerTag, derChildren, derDecodeInteger, derDecodeOid, derParseSingle } from '../../../src/pki/der-reader.js';
import { dnsNameProblem } from '../../../src/pki/dns-name.js';
import { decodeBasicConstraints, decodeExtendedKeyUsage, decodeKeyUsage, decodeSubjectKeyIdentifier } from '../../../src/pki/extension-values.js';
import { decodeGeneralNames } from '../../../src/pki/general-names.js';
import { KEY_USAGE_BITS, keyUsageName } from '../../../src/pki/key-usage.js';
import { CsrAttributeOid, ExtendedKeyUsageOid, ExtensionOid, describeOid } from '../../../src/pki/oids.js';
import { invalid } from '../../../src/pki/pki-error.js';
import { describeKey, leafKeyTypeOf } from '../../../src/pki/public-key-type.js';
import { parseSignedData, signatureSchemeOf, verifySignedData, type SignedData } from '../../../src/pki/signed-data.js';
import { parseSpiffeId } from '../../../src/pki/spiffe-id.js';

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
export async function checkCsrReference(csr: Uint8Array | string): Promise<CheckedCsr> {
  const der = toDer(csr);
  let signed: SignedData;
  let info: { spki: Uint8Array; attributes: Uint8Array };
  try {
    signed = parseSignedData(der, 'CSR');
    info = parseRequestInfo(signed.tbs);
  } catch (error) {
    throw malformed(error);
  }

  const publicKey = readPublicKey(info.spki);
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

function readPublicKey(spki: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
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
