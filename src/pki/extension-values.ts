/**
 * Decoders of the extension values credbroker inspects in CSRs and chains (RFC 5280 §4.2).
 * Each takes the content of `extnValue` (the DER inside the OCTET STRING) and throws
 * {@link DerError} when it is malformed.
 */
import {
  DerCursor,
  DerError,
  DerTag,
  derChildren,
  derDecodeBitString,
  derDecodeBoolean,
  derDecodeInteger,
  derDecodeOid,
} from './der-reader.js';

/** A decoded basicConstraints value. */
export interface BasicConstraints {
  readonly ca: boolean;
  /** Absent means unlimited. */
  readonly pathLength?: number;
}

/** Decodes basicConstraints. @throws DerError */
export function decodeBasicConstraints(value: Uint8Array): BasicConstraints {
  const what = 'basicConstraints';
  const outer = new DerCursor(value, what);
  const body = derChildren(outer.read(DerTag.sequence, what), what);
  outer.end();
  const caElement = body.readOptional(DerTag.boolean);
  const ca = caElement === undefined ? false : derDecodeBoolean(caElement.content, what);
  // DER omits a DEFAULT value: an explicit cA FALSE is not DER.
  if (caElement !== undefined && !ca) throw new DerError(`${what}: cA FALSE must be omitted in DER`);
  const lengthElement = body.readOptional(DerTag.integer);
  body.end();
  if (lengthElement === undefined) return { ca };
  const pathLength = derDecodeInteger(lengthElement.content, what);
  if (pathLength < 0n || pathLength > 255n) throw new DerError(`${what}: pathLenConstraint out of range`);
  return { ca, pathLength: Number(pathLength) };
}

/** Decodes keyUsage to the set of bit numbers that are set. @throws DerError */
export function decodeKeyUsage(value: Uint8Array): Set<number> {
  const what = 'keyUsage';
  const outer = new DerCursor(value, what);
  const bits = derDecodeBitString(outer.read(DerTag.bitString, what).content, what);
  outer.end();
  const set = new Set<number>();
  bits.bytes.forEach((byte, index) => {
    for (let bit = 0; bit < 8; bit++) if (byte & (0x80 >> bit)) set.add(index * 8 + bit);
  });
  return set;
}

/** Decodes extKeyUsage to its purpose OIDs (at least one). @throws DerError */
export function decodeExtendedKeyUsage(value: Uint8Array): string[] {
  const what = 'extKeyUsage';
  const outer = new DerCursor(value, what);
  const body = derChildren(outer.read(DerTag.sequence, what), what);
  outer.end();
  const oids: string[] = [];
  while (!body.done) oids.push(derDecodeOid(body.read(DerTag.oid, 'KeyPurposeId').content, what));
  if (oids.length === 0) throw new DerError(`${what}: no purposes`);
  return oids;
}

/** Decodes subjectKeyIdentifier to its key identifier bytes. @throws DerError */
export function decodeSubjectKeyIdentifier(value: Uint8Array): Uint8Array {
  const what = 'subjectKeyIdentifier';
  const outer = new DerCursor(value, what);
  const keyId = outer.read(DerTag.octetString, what).content;
  outer.end();
  return keyId;
}

/** Decodes authorityKeyIdentifier's keyIdentifier, or undefined if it has none. @throws DerError */
export function decodeAuthorityKeyIdentifier(value: Uint8Array): Uint8Array | undefined {
  const what = 'authorityKeyIdentifier';
  const outer = new DerCursor(value, what);
  const body = derChildren(outer.read(DerTag.sequence, what), what);
  outer.end();
  const keyId = body.readOptional(0x80)?.content;
  body.readOptional(0xa1); // authorityCertIssuer
  body.readOptional(0x82); // authorityCertSerialNumber
  body.end();
  return keyId;
}
