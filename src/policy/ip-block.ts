/**
 * The IP SANs an identity may get, as policy writes them: an address (`10.1.2.3`, `fd00::7`) or
 * a CIDR block (`10.20.0.0/24`, `fd00:1::/64`), IPv4 in dotted decimal without leading zeros,
 * IPv6 in RFC 4291 §2.2 text (with `::` and an embedded IPv4 tail), no zone index. A block's
 * host bits must be zero, as src/pki requires.
 *
 * Parsing is src/core's, shared with src/pki, so policy accepts exactly what issuance accepts.
 */
import { parseIpAddress, parseIpRange, type IpRange } from '../core/index.js';

/** A parsed address or block: the address bytes (4 or 16) and the prefix length. */
export type IpBlock = IpRange;

/** Parses an address or CIDR block; null if `text` is neither or a block has host bits set. */
export function parseIpBlock(text: string): IpBlock | null {
  return parseIpRange(text);
}

/** Why `text` is not an address or CIDR block policy accepts (a phrase), or null if it is one. */
export function ipBlockProblem(text: string): string | null {
  if (parseIpBlock(text) !== null) return null;
  const slash = text.indexOf('/');
  const address = parseIpAddress(slash === -1 ? text : text.slice(0, slash));
  if (address === null) return 'is not an IPv4 or IPv6 address or CIDR block (e.g. 10.0.0.7, 10.0.0.0/24, fd00::/64)';
  const bits = address.length * 8;
  const prefix = text.slice(slash + 1);
  if (!/^(?:0|[1-9]\d{0,2})$/.test(prefix) || Number(prefix) > bits) {
    return `has the prefix length "${prefix.slice(0, 10)}": expected 0 to ${bits}`;
  }
  return `has address bits set after the /${prefix} prefix: write the block's network address`;
}
