/**
 * The second line of defence for logs (the first is never passing secrets to a logger): text
 * that looks like a credential is replaced before a line is written, whatever field carries it.
 *
 * Recognised: join tokens (`cbjt1-…`), compact JWS/JWT (`eyJ….….…`), PEM private keys and
 * CSRs, and PKCS#11 PIN-like fields are handled by path redaction in the logger itself.
 */

/** What replaces a recognised secret. */
export const REDACTION = '[redacted]';

const PATTERNS: readonly RegExp[] = [
  // Join tokens: the cbjt1- prefix and its base32/base64url body.
  /cbjt1-[A-Za-z0-9_-]{8,}/g,
  // Compact JWS: three base64url parts, the header starting with {" (eyJ).
  /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
  // PEM private keys (any kind) and certificate requests, whole blocks.
  /-----BEGIN ([A-Z0-9 ]*PRIVATE KEY|CERTIFICATE REQUEST|NEW CERTIFICATE REQUEST)-----[\s\S]*?-----END \1-----/g,
  // A PEM block cut short (no END line in this string).
  /-----BEGIN ([A-Z0-9 ]*PRIVATE KEY|CERTIFICATE REQUEST)-----[\s\S]*/g,
];

/** `text` with every recognised secret replaced by {@link REDACTION}. */
export function scrubSecrets(text: string): string {
  let result = text;
  for (const pattern of PATTERNS) result = result.replace(pattern, REDACTION);
  return result;
}

/**
 * A deep copy of `value` with {@link scrubSecrets} applied to every string (object keys kept).
 * Depth-limited (8) and cycle-safe; Buffers and typed arrays are summarised, never dumped.
 */
export function scrubValue(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return scrubSecrets(value);
  if (value === null || typeof value !== 'object') return value;
  if (ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (value instanceof Error) return scrubSecrets(value.message);
  if (seen.has(value) || depth >= 8) return '[…]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = scrubValue(item, depth + 1, seen);
  return out;
}
