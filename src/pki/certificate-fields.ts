/**
 * The fields of an X.509 v3 certificate read straight from its DER (RFC 5280 §4.1), strictly:
 * chain checks work on these bytes rather than on a library's view, so that names compare
 * byte for byte and an extension the library does not know is still seen.
 */
import type * as x509 from '@peculiar/x509';
import { publicKeyFromSpki } from '../core/index.js';
import type { KeyObject } from 'node:crypto';
import {
  DerCursor,
  DerError,
  DerTag,
  derChildren,
  derDecodeBoolean,
  derDecodeInteger,
  derDecodeOid,
  derDecodeTime,
} from './der-reader.js';
import { parseSignedData, type SignedData } from './signed-data.js';

/** One extension as it appears in the certificate. */
export interface RawExtension {
  readonly oid: string;
  readonly critical: boolean;
  /** The content of extnValue: the extension's own DER. */
  readonly value: Uint8Array;
}

/** A parsed certificate. */
export interface CertificateFields {
  readonly der: Uint8Array;
  readonly signed: SignedData;
  /** The signature AlgorithmIdentifier TLV inside tbsCertificate. */
  readonly innerAlgorithmRaw: Uint8Array;
  /** Lowercase hex of the serial number's content octets. */
  readonly serialNumber: string;
  /** The issuer Name TLV, for byte comparison with an issuer's subject. */
  readonly issuerRaw: Uint8Array;
  /** The subject Name TLV. */
  readonly subjectRaw: Uint8Array;
  /** True if the subject is the empty SEQUENCE. */
  readonly subjectEmpty: boolean;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The SubjectPublicKeyInfo TLV. */
  readonly spki: Uint8Array;
  readonly extensions: readonly RawExtension[];
}

/**
 * Parses an X.509 v3 certificate.
 * @throws DerError if it is malformed, not v3, or repeats an extension
 */
export function parseCertificateFields(der: Uint8Array): CertificateFields {
  const what = 'certificate';
  const signed = parseSignedData(der, what);
  const tbs = derChildren(new DerCursor(signed.tbs, what).read(DerTag.sequence, 'tbsCertificate'), what);
  const versionElement = tbs.read(0xa0, 'version');
  const versionCursor = new DerCursor(versionElement.content, what);
  const version = derDecodeInteger(versionCursor.read(DerTag.integer, 'version').content, what);
  versionCursor.end();
  if (version !== 2n) throw new DerError(`${what}: not a version 3 certificate`);
  const serial = tbs.read(DerTag.integer, 'serialNumber').content;
  const innerAlgorithmRaw = tbs.read(DerTag.sequence, 'signature').raw;
  const issuerRaw = tbs.read(DerTag.sequence, 'issuer').raw;
  const validity = derChildren(tbs.read(DerTag.sequence, 'validity'), what);
  const notBefore = derDecodeTime(validity.next(), 'notBefore');
  const notAfter = derDecodeTime(validity.next(), 'notAfter');
  validity.end();
  const subject = tbs.read(DerTag.sequence, 'subject');
  const spki = tbs.read(DerTag.sequence, 'subjectPublicKeyInfo').raw;
  tbs.readOptional(0x81); // issuerUniqueID
  tbs.readOptional(0x82); // subjectUniqueID
  const extensions: RawExtension[] = [];
  const extensionsElement = tbs.readOptional(0xa3);
  tbs.end();
  if (extensionsElement !== undefined) {
    const wrapper = new DerCursor(extensionsElement.content, what);
    const list = derChildren(wrapper.read(DerTag.sequence, 'extensions'), what);
    wrapper.end();
    while (!list.done) extensions.push(parseExtension(list.read(DerTag.sequence, 'extension').content, what));
    const seen = new Set<string>();
    for (const extension of extensions) {
      if (seen.has(extension.oid)) throw new DerError(`${what}: extension ${extension.oid} appears twice`);
      seen.add(extension.oid);
    }
  }
  return {
    der,
    signed,
    innerAlgorithmRaw,
    serialNumber: Buffer.from(serial).toString('hex'),
    issuerRaw,
    subjectRaw: subject.raw,
    subjectEmpty: subject.content.length === 0,
    notBefore,
    notAfter,
    spki,
    extensions,
  };
}

/**
 * Parses `Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }` content.
 * @throws DerError
 */
export function parseExtension(content: Uint8Array, what: string): RawExtension {
  const cursor = new DerCursor(content, `${what} extension`);
  const oid = derDecodeOid(cursor.read(DerTag.oid, 'extnID').content, what);
  const criticalElement = cursor.readOptional(DerTag.boolean);
  const critical = criticalElement === undefined ? false : derDecodeBoolean(criticalElement.content, what);
  const value = cursor.read(DerTag.octetString, 'extnValue').content;
  cursor.end();
  return { oid, critical, value };
}

/** The fields of a @peculiar/x509 certificate. @throws DerError */
export function fieldsOf(certificate: x509.X509Certificate): CertificateFields {
  return parseCertificateFields(new Uint8Array(certificate.rawData));
}

/** The extension with `oid`, if present. */
export function findExtension(fields: CertificateFields, oid: string): RawExtension | undefined {
  return fields.extensions.find((extension) => extension.oid === oid);
}

/** The certificate's public key. @throws Error if node cannot read it */
export function publicKeyOf(fields: CertificateFields): KeyObject {
  return publicKeyFromSpki(fields.spki);
}
