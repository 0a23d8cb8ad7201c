/**
 * IP addresses as X.509 carries them (RFC 5280 §4.2.1.6: 4 or 16 octets in a SAN; address and
 * mask, 8 or 32 octets, in a name constraint), parsed from and printed to canonical text:
 * dotted decimal for IPv4, RFC 5952 for IPv6. An IPv4-mapped IPv6 address stays IPv6: it is a
 * different SAN from the IPv4 address.
 */

/** A CIDR block, e.g. `10.0.0.0/8`: the network address (host bits zero) and prefix length. */
export interface IpRange {
  readonly address: Uint8Array;
  readonly prefixLength: number;
}

/** Parses IPv4 or IPv6 text to 4 or 16 bytes, or returns null if it is not an address. */
export function parseIpAddress(text: string): Uint8Array | null {
  if (text.includes(':')) return parseIpv6(text);
  return parseIpv4(text);
}

/** Canonical text of 4 or 16 address bytes. @throws RangeError for other lengths */
export function formatIpAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  // RFC 5952 §4.2: compress the longest run of two or more zero words (the first one on a tie).
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((word) => word.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/**
 * Parses an address (`10.1.2.3`, a /32 or /128) or a CIDR block (`10.0.0.0/8`, `fd00::/8`).
 * Host bits must be zero. Returns null if the text is neither.
 */
export function parseIpRange(text: string): IpRange | null {
  const slash = text.indexOf('/');
  const address = parseIpAddress(slash === -1 ? text : text.slice(0, slash));
  if (address === null) return null;
  const bits = address.length * 8;
  let prefixLength = bits;
  if (slash !== -1) {
    const prefix = text.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(prefix) || Number(prefix) > bits) return null;
    prefixLength = Number(prefix);
  }
  const mask = prefixMask(address.length, prefixLength);
  if (address.some((byte, i) => (byte & ~(mask[i] ?? 0) & 0xff) !== 0)) return null;
  return { address, prefixLength };
}

/** True if `address` (4 or 16 bytes) lies in `range` (same family only). */
export function ipInRange(address: Uint8Array, range: IpRange): boolean {
  if (address.length !== range.address.length) return false;
  const mask = prefixMask(address.length, range.prefixLength);
  return address.every((byte, i) => (byte & (mask[i] ?? 0)) === range.address[i]);
}

/** The mask of a prefix length, as `length` bytes. */
export function prefixMask(length: number, prefixLength: number): Uint8Array {
  const mask = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const bits = Math.max(0, Math.min(8, prefixLength - 8 * i));
    mask[i] = (0xff << (8 - bits)) & 0xff;
  }
  return mask;
}

/**
 * The prefix length of a contiguous mask (`ff ff 00 00` → 16), or null if the mask has holes.
 */
export function maskPrefixLength(mask: Uint8Array): number | null {
  let length = 0;
  let ended = false;
  for (const byte of mask) {
    for (let bit = 7; bit >= 0; bit--) {
      const set = (byte >> bit) & 1;
      if (set === 1 && ended) return null;
      if (set === 1) length++;
      else ended = true;
    }
  }
  return length;
}

function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    // No leading zeros: "010" is octal to some parsers and decimal to others.
    if (!/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return null;
    bytes[i] = Number(part);
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | null {
  if (text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parseWords = (part: string, allowV4: boolean): number[] | null => {
    if (part === '') return [];
    const groups = part.split(':');
    const words: number[] = [];
    for (const [i, group] of groups.entries()) {
      if (allowV4 && i === groups.length - 1 && group.includes('.')) {
        const v4 = parseIpv4(group);
        if (v4 === null) return null;
        words.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(group)) return null;
        words.push(parseInt(group, 16));
      }
    }
    return words;
  };
  const head = parseWords(halves[0] ?? '', halves.length === 1);
  const tail = halves.length === 2 ? parseWords(halves[1] ?? '', true) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const words = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  return bytes;
}
