/**
 * GeneralName (RFC 5280 §4.2.1.6): the names of SANs and of name constraints, decoded from and
 * encoded to DER. Only URI, DNS and IP names are ever encoded by credbroker; decoding reports
 * every kind so that callers can refuse the ones they do not handle, by name.
 */
import { DerCursor, DerError, derDecodeIa5String, type DerElement } from './der-reader.js';
import { derContext, derSequence } from './der-writer.js';
import { formatIpAddress, maskPrefixLength } from './ip-address.js';

/** The nine kinds of GeneralName, by their RFC 5280 field names. */
export type GeneralNameKind =
  | 'otherName'
  | 'rfc822Name'
  | 'dNSName'
  | 'x400Address'
  | 'directoryName'
  | 'ediPartyName'
  | 'uniformResourceIdentifier'
  | 'iPAddress'
  | 'registeredID';

const KIND_BY_TAG_NUMBER: readonly GeneralNameKind[] = [
  'otherName',
  'rfc822Name',
  'dNSName',
  'x400Address',
  'directoryName',
  'ediPartyName',
  'uniformResourceIdentifier',
  'iPAddress',
  'registeredID',
];

/** A decoded GeneralName. */
export interface GeneralName {
  readonly kind: GeneralNameKind;
  /**
   * rfc822Name, dNSName, uniformResourceIdentifier: the IA5 text. iPAddress: the canonical
   * address (a SAN) or `address/prefix` (a name constraint). Other kinds: `''`.
   */
  readonly text: string;
  /** The content octets (for iPAddress: the address, then the mask in a constraint). */
  readonly content: Uint8Array;
}

/** A name credbroker encodes: a URI, a DNS name or an IP address (4 or 16 bytes). */
export type EncodableName =
  | { readonly kind: 'uniformResourceIdentifier'; readonly text: string }
  | { readonly kind: 'dNSName'; readonly text: string }
  | { readonly kind: 'iPAddress'; readonly address: Uint8Array }
  | { readonly kind: 'iPAddressRange'; readonly address: Uint8Array; readonly mask: Uint8Array };

/** Encodes one GeneralName. @throws RangeError for non-ASCII text */
export function encodeGeneralName(name: EncodableName): Buffer {
  switch (name.kind) {
    case 'dNSName':
      return derContext(2, ia5Content(name.text));
    case 'uniformResourceIdentifier':
      return derContext(6, ia5Content(name.text));
    case 'iPAddress':
      return derContext(7, name.address);
    case 'iPAddressRange':
      return derContext(7, Buffer.concat([name.address, name.mask]));
  }
}

/** Encodes `GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName` (a SAN's value). */
export function encodeGeneralNames(names: readonly EncodableName[]): Buffer {
  if (names.length === 0) throw new RangeError('GeneralNames needs at least one name');
  return derSequence(...names.map(encodeGeneralName));
}

/**
 * Decodes one GeneralName element.
 * @param inConstraint true inside a name constraint (iPAddress is then address and mask)
 * @throws DerError
 */
export function decodeGeneralName(element: DerElement, inConstraint: boolean, what: string): GeneralName {
  const tagClass = element.tag & 0xc0;
  const number = element.tag & 0x1f;
  const kind = KIND_BY_TAG_NUMBER[number];
  if (tagClass !== 0x80 || kind === undefined) throw new DerError(`${what}: not a GeneralName`);
  const constructed = (element.tag & 0x20) !== 0;
  const shouldBeConstructed = kind === 'otherName' || kind === 'x400Address' || kind === 'directoryName' || kind === 'ediPartyName';
  if (constructed !== shouldBeConstructed) throw new DerError(`${what}: malformed ${kind}`);
  let text = '';
  if (kind === 'rfc822Name' || kind === 'dNSName' || kind === 'uniformResourceIdentifier') {
    text = derDecodeIa5String(element.content, `${what} ${kind}`);
  } else if (kind === 'iPAddress') {
    text = ipText(element.content, inConstraint, what);
  }
  return { kind, text, content: element.content };
}

/**
 * Decodes `GeneralNames` (a SAN's value): at least one name.
 * @throws DerError
 */
export function decodeGeneralNames(value: Uint8Array, what: string): GeneralName[] {
  const outer = new DerCursor(value, what);
  const sequence = outer.read(0x30, 'GeneralNames');
  outer.end();
  const cursor = new DerCursor(sequence.content, what);
  const names: GeneralName[] = [];
  while (!cursor.done) names.push(decodeGeneralName(cursor.next(), false, what));
  if (names.length === 0) throw new DerError(`${what}: no names`);
  return names;
}

/** IA5String content octets (7-bit ASCII). @throws RangeError for other characters */
function ia5Content(text: string): Buffer {
  if (!/^\p{ASCII}*$/u.test(text)) throw new RangeError('IA5String holds 7-bit ASCII only');
  return Buffer.from(text, 'latin1');
}

function ipText(content: Uint8Array, inConstraint: boolean, what: string): string {
  if (!inConstraint) {
    if (content.length !== 4 && content.length !== 16) throw new DerError(`${what}: an IP address has 4 or 16 bytes`);
    return formatIpAddress(content);
  }
  if (content.length !== 8 && content.length !== 32) throw new DerError(`${what}: an IP constraint has 8 or 32 bytes`);
  const half = content.length / 2;
  const prefix = maskPrefixLength(content.subarray(half));
  if (prefix === null) throw new DerError(`${what}: an IP constraint's mask is not contiguous`);
  return `${formatIpAddress(content.subarray(0, half))}/${prefix}`;
}
