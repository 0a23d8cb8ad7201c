/**
 * The IP SANs an identity may get, as policy writes them: an address (`10.1.2.3`, `fd00::7`) or
 * a CIDR block (`10.20.0.0/24`, `fd00:1::/64`), IPv4 in dotted decimal without leading zeros,
 * IPv6 in RFC 4291 §2.2 text (with `::` and an embedded IPv4 tail), no zone index. A block's
 * host bits must be zero, as src/pki requires.
 *
 * The policy module's own small parser (src/pki sits above it in the layering);
 * test/unit/policy checks that src/pki's `parseIpRange` accepts whatever this accepts.
 */

/** A parsed address or block: the address bytes (4 or 16) and the prefix length. */
export interface IpBlock {
  readonly address: Uint8Array;
  readonly prefixLength: number;
}

/** Parses an address or CIDR block; null if `text` is neither or a block has host bits set. */
export function parseIpBlock(text: string): IpBlock | null {
  const slash = text.indexOf('/');
  const address = parseIpAddress(slash === -1 ? text : text.slice(0, slash));
  if (address === null) return null;
  const bits = address.length * 8;
  let prefixLength = bits;
  if (slash !== -1) {
    const prefix = text.slice(slash + 1);
    if (!/^(?:0|[1-9]\d{0,2})$/.test(prefix) || Number(prefix) > bits) return null;
    prefixLength = Number(prefix);
  }
  for (const [i, byte] of address.entries()) {
    const kept = Math.max(0, Math.min(8, prefixLength - 8 * i));
    if ((byte & (0xff >> kept)) !== 0) return null;
  }
  return { address, prefixLength };
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

function parseIpAddress(text: string): Uint8Array | null {
  return text.includes(':') ? parseIpv6(text) : parseIpv4(text);
}

function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    // No leading zeros: "010" is octal to some parsers and decimal to others.
    if (!/^(?:0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return null;
    bytes[i] = Number(part);
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | null {
  if (text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const words = (part: string, v4TailAllowed: boolean): number[] | null => {
    if (part === '') return [];
    const groups = part.split(':');
    const out: number[] = [];
    for (const [i, group] of groups.entries()) {
      if (v4TailAllowed && i === groups.length - 1 && group.includes('.')) {
        const v4 = parseIpv4(group);
        if (v4 === null) return null;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(group)) {
        out.push(parseInt(group, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const compressed = halves.length === 2;
  const head = words(halves[0] ?? '', !compressed);
  const tail = compressed ? words(halves[1] ?? '', true) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (compressed ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array<number>(compressed ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  return bytes;
}
