/**
 * Lowercase base32 (RFC 4648 §6 alphabet, written in lowercase, no padding) for text that people
 * copy and sometimes type: quorum shares. One case, no `0`/`1`/`8`/`9` (so `o` and `l` cannot be
 * misread as digits), and no `-`, which share texts use as their field separator.
 */

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

const VALUE_OF = new Map<string, number>(Array.from({ length: ALPHABET.length }, (_, value) => [ALPHABET.charAt(value), value]));

/** Encodes bytes as lowercase unpadded base32: `ceil(8 * length / 5)` characters. */
export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET.charAt((buffer >> bits) & 31);
    }
  }
  if (bits > 0) out += ALPHABET.charAt((buffer << (5 - bits)) & 31);
  return out;
}

/**
 * Decodes lowercase unpadded base32 strictly: only the 32 lowercase characters, a length that
 * {@link base32Encode} can produce, and zero unused bits in the last character, so every byte
 * string has exactly one text.
 * @returns the bytes, or null if `text` is not such an encoding
 */
export function base32Decode(text: string): Buffer | null {
  const remainder = text.length % 8;
  // 1, 3 and 6 characters past a full 8-character group carry no whole byte.
  if (remainder === 1 || remainder === 3 || remainder === 6) return null;
  const out = Buffer.alloc(Math.floor((text.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let index = 0;
  for (const char of text) {
    const value = VALUE_OF.get(char);
    if (value === undefined) {
      out.fill(0);
      return null;
    }
    buffer = ((buffer << 5) | value) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[index++] = (buffer >> bits) & 0xff;
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) {
    out.fill(0);
    return null;
  }
  return out;
}
