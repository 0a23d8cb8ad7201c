/**
 * Certificate serial numbers: 16 random bytes (about 127 bits of entropy), positive and exactly 16
 * bytes once DER-encoded (RFC 5280 §4.1.2.2: positive, at most 20 octets; unpredictable serials
 * also defeat chosen-prefix collisions).
 */
import type { RandomSource } from '../core/index.js';
import { internal } from './pki-error.js';

/** Serial number length in bytes. */
export const SERIAL_NUMBER_BYTES = 16;

/** Draws beyond this many are treated as a broken RandomSource. */
const MAX_DRAWS = 64;

/**
 * A new serial number as 32 lowercase hex digits: the first byte is in 0x01–0x7f, so the value
 * is positive (top bit clear) and DER keeps all 16 bytes (no leading 0x00 to strip or add).
 * Draws again (rejection sampling, 1 in 128) when the first byte would be 0x00 or 0x80.
 * @throws BrokerError internal `pki.random` if `random` keeps returning such bytes
 */
export function newSerialNumber(random: RandomSource): string {
  for (let draw = 0; draw < MAX_DRAWS; draw++) {
    const bytes = random.bytes(SERIAL_NUMBER_BYTES);
    if (bytes.length !== SERIAL_NUMBER_BYTES) break;
    bytes[0] = (bytes[0] ?? 0) & 0x7f;
    if (bytes[0] !== 0) return bytes.toString('hex');
  }
  throw internal('pki.random', 'the random source returned unusable bytes for a serial number');
}
