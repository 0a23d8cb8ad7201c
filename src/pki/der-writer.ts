/**
 * DER encoders for the few structures @peculiar/x509 has no class for, or that credbroker
 * encodes itself to control every byte (extensions of its certificate profiles, the CRL number).
 * Inputs are trusted (built by this package); bad ones throw RangeError.
 */

/** Encodes a definite DER length. */
function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV from a tag byte and its content. */
export function derTlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

/** SEQUENCE of already encoded elements. */
export function derSequence(...elements: Uint8Array[]): Buffer {
  return derTlv(0x30, Buffer.concat(elements));
}

/** OBJECT IDENTIFIER from dotted text. @throws RangeError for a malformed OID */
export function derOid(oid: string): Buffer {
  if (!/^[0-2](\.(0|[1-9]\d*))+$/.test(oid)) throw new RangeError(`not an object identifier: ${oid}`);
  const arcs = oid.split('.').map(Number);
  const [first = 0, second = 0, ...rest] = arcs;
  const bytes: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const chunk: number[] = [arc % 128];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128)) chunk.unshift(0x80 | value % 128);
    bytes.push(...chunk);
  }
  return derTlv(0x06, Buffer.from(bytes));
}

/** BOOLEAN (DER: 0xff for true). */
export function derBoolean(value: boolean): Buffer {
  return derTlv(0x01, Buffer.from([value ? 0xff : 0x00]));
}

/** INTEGER from a non-negative bigint or number, minimal two's complement. @throws RangeError */
export function derInteger(value: bigint | number): Buffer {
  let rest = BigInt(value);
  if (rest < 0n) throw new RangeError('negative integers are not encoded here');
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(rest & 0xffn));
    rest >>= 8n;
  } while (rest > 0n);
  if ((bytes[0] ?? 0) & 0x80) bytes.unshift(0);
  return derTlv(0x02, Buffer.from(bytes));
}

/** OCTET STRING. */
export function derOctetString(bytes: Uint8Array): Buffer {
  return derTlv(0x04, bytes);
}

/** BIT STRING of whole bytes (no unused bits), e.g. a signature. */
export function derBitString(bytes: Uint8Array): Buffer {
  return derTlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));
}

/**
 * BIT STRING of a named bit list (X.680 §22.7 / X.690 §11.2.2): bit 0 is the most significant
 * bit of the first byte; trailing zero bits are removed, as DER requires for named bit lists.
 */
export function derNamedBits(bits: readonly number[]): Buffer {
  const highest = bits.length === 0 ? -1 : Math.max(...bits);
  const bytes = Buffer.alloc(Math.ceil((highest + 1) / 8));
  for (const bit of bits) bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) | (0x80 >> (bit & 7));
  const unusedBits = bytes.length * 8 - (highest + 1);
  return derTlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

/**
 * A context-specific element `[number]`: IMPLICIT tagging of `content` (the content octets of
 * the underlying type), primitive unless `constructed`.
 */
export function derContext(number: number, content: Uint8Array, constructed = false): Buffer {
  if (number > 30) throw new RangeError('context tag numbers above 30 are not encoded here');
  return derTlv(0x80 | (constructed ? 0x20 : 0) | number, content);
}

/**
 * A Time (RFC 5280 §4.1.2.5): UTCTime for 1950–2049, GeneralizedTime otherwise, always in UTC
 * with whole seconds (fractions are dropped).
 * @throws RangeError for an invalid date
 */
export function derTime(date: Date): Buffer {
  if (Number.isNaN(date.getTime())) throw new RangeError('cannot encode an invalid date');
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const year = date.getUTCFullYear();
  const digits = `${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  if (year >= 1950 && year < 2050) return derTlv(0x17, Buffer.from(`${String(year % 100).padStart(2, '0')}${digits}`, 'latin1'));
  if (year < 0 || year > 9999) throw new RangeError('year out of range for GeneralizedTime');
  return derTlv(0x18, Buffer.from(`${String(year).padStart(4, '0')}${digits}`, 'latin1'));
}
