/**
 * IP address and CIDR block text, parsed once for every module (src/pki for SANs and name
 * constraints, src/policy for what identities may get): IPv4 in dotted decimal without leading
 * zeros, IPv6 in RFC 4291 §2.2 text (with `::` and an embedded IPv4 tail), no zone index.
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
  for (const [i, byte] of address.entries()) {
    const kept = Math.max(0, Math.min(8, prefixLength - 8 * i));
    if ((byte & (0xff >> kept)) !== 0) return null;
  }
  return { address, prefixLength };
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
