/**
 * IP addresses as X.509 carries them (RFC 5280 §4.2.1.6: 4 or 16 octets in a SAN; address and
 * mask, 8 or 32 octets, in a name constraint), parsed from and printed to canonical text:
 * dotted decimal for IPv4, RFC 5952 for IPv6. An IPv4-mapped IPv6 address stays IPv6: it is a
 * different SAN from the IPv4 address.
 */

import type { IpRange } from '../core/index.js';

/** Address and CIDR parsing live in src/core (policy uses them too). */
export { parseIpAddress, parseIpRange, type IpRange } from '../core/index.js';

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
