/**
 * A strict, bounded reader of DER (X.690 distinguished encoding), for input that comes from
 * outside: CSRs from services, certificates presented for chain checks.
 *
 * Strict on purpose: definite lengths only, minimal length encodings, single-byte tags, no
 * content running past its parent, no trailing bytes where a schema ends. Every failure is a
 * {@link DerError} (never a crash on garbage), and the reader never recurses on its own: callers
 * walk the fixed schema they expect, so nesting depth is bounded by the schema.
 */

/** A DER structure that is malformed or not what the schema expects. */
export class DerError extends RangeError {
  override readonly name: string = 'DerError';
}

/** Universal and context tags this package reads. */
export const DerTag = Object.freeze({
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
});

/** One TLV: its tag byte, its content and the whole encoding (tag, length and content). */
export interface DerElement {
  readonly tag: number;
  readonly content: Uint8Array;
  readonly raw: Uint8Array;
}

/** Largest content length accepted (16 MiB): far above any certificate or CSR. */
const MAX_LENGTH = 0x1_00_00_00;

/** Walks a run of TLVs from left to right. */
export class DerCursor {
  readonly #bytes: Uint8Array;
  #offset = 0;
  /** What is being read, for error messages (e.g. `CSR`, `extension value`). */
  readonly what: string;

  /** @param bytes the encoded TLVs; @param what names them in errors */
  constructor(bytes: Uint8Array, what: string) {
    this.#bytes = bytes;
    this.what = what;
  }

  /** True when every byte was read. */
  get done(): boolean {
    return this.#offset >= this.#bytes.length;
  }

  /** The tag of the next TLV, or undefined at the end. */
  peekTag(): number | undefined {
    return this.#bytes[this.#offset];
  }

  /**
   * Reads the next TLV, whatever its tag.
   * @throws DerError at the end or on a malformed header
   */
  next(): DerElement {
    const bytes = this.#bytes;
    const start = this.#offset;
    const tag = bytes[start];
    if (tag === undefined) throw new DerError(`${this.what}: unexpected end of data`);
    if ((tag & 0x1f) === 0x1f) throw new DerError(`${this.what}: multi-byte tags are not supported`);
    let offset = start + 1;
    const first = bytes[offset++];
    if (first === undefined) throw new DerError(`${this.what}: truncated length`);
    let length = first;
    if (first & 0x80) {
      const count = first & 0x7f;
      if (count === 0) throw new DerError(`${this.what}: indefinite length is not DER`);
      if (count > 4) throw new DerError(`${this.what}: length too large`);
      length = 0;
      for (let i = 0; i < count; i++) {
        const next = bytes[offset++];
        if (next === undefined) throw new DerError(`${this.what}: truncated length`);
        if (i === 0 && next === 0) throw new DerError(`${this.what}: non-minimal length`);
        length = length * 256 + next;
      }
      if (length < 0x80) throw new DerError(`${this.what}: non-minimal length`);
    }
    if (length > MAX_LENGTH) throw new DerError(`${this.what}: length too large`);
    if (offset + length > bytes.length) throw new DerError(`${this.what}: content runs past the end of its container`);
    this.#offset = offset + length;
    return { tag, content: bytes.subarray(offset, offset + length), raw: bytes.subarray(start, offset + length) };
  }

  /**
   * Reads the next TLV and checks its tag.
   * @param tag the expected tag byte; @param field names the field in errors
   * @throws DerError
   */
  read(tag: number, field: string): DerElement {
    const actual = this.peekTag();
    if (actual !== tag) {
      throw new DerError(
        actual === undefined
          ? `${this.what}: ${field} is missing`
          : `${this.what}: ${field} has tag 0x${actual.toString(16)}, expected 0x${tag.toString(16)}`,
      );
    }
    return this.next();
  }

  /** Reads the next TLV if it has `tag`, else returns undefined. @throws DerError */
  readOptional(tag: number): DerElement | undefined {
    return this.peekTag() === tag ? this.next() : undefined;
  }

  /** @throws DerError if bytes remain */
  end(): void {
    if (!this.done) throw new DerError(`${this.what}: unexpected trailing data`);
  }
}

/**
 * A cursor over the content of a constructed element (SEQUENCE, SET, [n] constructed).
 * @throws DerError if the element is primitive
 */
export function derChildren(element: DerElement, what: string): DerCursor {
  if ((element.tag & 0x20) === 0) throw new DerError(`${what}: expected a constructed element`);
  return new DerCursor(element.content, what);
}

/**
 * Parses a whole buffer as exactly one TLV with the given tag (nothing before or after).
 * @throws DerError
 */
export function derParseSingle(bytes: Uint8Array, tag: number, what: string): DerElement {
  const cursor = new DerCursor(bytes, what);
  const element = cursor.read(tag, what);
  cursor.end();
  return element;
}

/** Decodes an OBJECT IDENTIFIER's content to dotted text. @throws DerError */
export function derDecodeOid(content: Uint8Array, what = 'OID'): string {
  if (content.length === 0 || content.length > 64) throw new DerError(`${what}: bad object identifier length`);
  const arcs: number[] = [];
  let value = 0;
  let started = false;
  for (const byte of content) {
    if (!started && byte === 0x80) throw new DerError(`${what}: non-minimal object identifier`);
    started = true;
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new DerError(`${what}: object identifier arc too large`);
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0;
      started = false;
    }
  }
  if (started) throw new DerError(`${what}: truncated object identifier`);
  const first = arcs[0] ?? 0;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** Decodes an INTEGER's content as a bigint (two's complement, minimal). @throws DerError */
export function derDecodeInteger(content: Uint8Array, what = 'INTEGER'): bigint {
  if (content.length === 0) throw new DerError(`${what}: empty integer`);
  const first = content[0] ?? 0;
  const second = content[1];
  if (second !== undefined && ((first === 0 && (second & 0x80) === 0) || (first === 0xff && (second & 0x80) !== 0))) {
    throw new DerError(`${what}: non-minimal integer`);
  }
  let value = 0n;
  for (const byte of content) value = (value << 8n) | BigInt(byte);
  if (first & 0x80) value -= 1n << BigInt(8 * content.length);
  return value;
}

/** Decodes a BOOLEAN's content (DER: 0x00 or 0xff only). @throws DerError */
export function derDecodeBoolean(content: Uint8Array, what = 'BOOLEAN'): boolean {
  if (content.length !== 1 || (content[0] !== 0x00 && content[0] !== 0xff)) throw new DerError(`${what}: bad boolean`);
  return content[0] === 0xff;
}

/** A BIT STRING's bits: the bytes and how many bits of the last byte are unused. */
export interface DerBitString {
  readonly bytes: Uint8Array;
  readonly unusedBits: number;
}

/** Decodes a BIT STRING's content. @throws DerError */
export function derDecodeBitString(content: Uint8Array, what = 'BIT STRING'): DerBitString {
  const unusedBits = content[0];
  if (unusedBits === undefined || unusedBits > 7) throw new DerError(`${what}: bad bit string`);
  const bytes = content.subarray(1);
  if (bytes.length === 0 && unusedBits !== 0) throw new DerError(`${what}: bad bit string`);
  const last = bytes[bytes.length - 1] ?? 0;
  if ((last & ((1 << unusedBits) - 1)) !== 0) throw new DerError(`${what}: unused bits are not zero`);
  return { bytes, unusedBits };
}

/** Decodes IA5String content (7-bit ASCII). @throws DerError */
export function derDecodeIa5String(content: Uint8Array, what = 'IA5String'): string {
  for (const byte of content) {
    if (byte > 0x7f) throw new DerError(`${what}: not an IA5String`);
  }
  return Buffer.from(content).toString('latin1');
}

/**
 * Decodes a UTCTime or GeneralizedTime element (RFC 5280 §4.1.2.5: `Z` and whole seconds).
 * @throws DerError
 */
export function derDecodeTime(element: DerElement, what = 'time'): Date {
  const text = Buffer.from(element.content).toString('latin1');
  let match: RegExpExecArray | null;
  let year: number;
  if (element.tag === DerTag.utcTime) {
    match = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (match === null) throw new DerError(`${what}: bad UTCTime`);
    const yy = Number(match[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (element.tag === DerTag.generalizedTime) {
    match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (match === null) throw new DerError(`${what}: bad GeneralizedTime`);
    year = Number(match[1]);
  } else {
    throw new DerError(`${what}: expected UTCTime or GeneralizedTime`);
  }
  const [month, day, hour, minute, second] = match.slice(2).map(Number) as [number, number, number, number, number];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(ms);
  if (Number.isNaN(ms) || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    throw new DerError(`${what}: not a valid date`);
  }
  return date;
}
