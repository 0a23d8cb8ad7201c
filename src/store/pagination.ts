/**
 * Paging of listings, shared by every Store implementation: page sizes (AIP-158 style) and
 * opaque page tokens. A token is base64url JSON of the last key returned and a fingerprint of
 * the filter, so a token cannot be replayed against another query.
 */
import { createHash } from 'node:crypto';
import { BrokerError } from '../core/index.js';

/** Page size used when the caller asks for 0 (no preference). */
export const DEFAULT_PAGE_SIZE = 100;
/** Largest page; larger requests are lowered to this. */
export const MAX_PAGE_SIZE = 1_000;

/** Longest page token accepted, in characters (a token is far shorter; this bounds parsing). */
const MAX_TOKEN_LENGTH = 1_024;

/**
 * The page size to use: 0 means {@link DEFAULT_PAGE_SIZE}, anything above {@link MAX_PAGE_SIZE}
 * is lowered to it.
 * @throws BrokerError invalid `store.page_size` for a negative or non-integer size
 */
export function effectivePageSize(pageSize: number): number {
  if (!Number.isSafeInteger(pageSize) || pageSize < 0) {
    throw new BrokerError('invalid', {
      code: 'store.page_size',
      publicMessage: `page size must be an integer from 0 (default ${DEFAULT_PAGE_SIZE}) to ${MAX_PAGE_SIZE}, got ${String(pageSize)}`,
    });
  }
  if (pageSize === 0) return DEFAULT_PAGE_SIZE;
  return Math.min(pageSize, MAX_PAGE_SIZE);
}

/** A short fingerprint of a filter, normalised to JSON (keys in a fixed order by the caller). */
export function filterFingerprint(filter: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(filter)).digest('hex').slice(0, 16);
}

/** Encodes the last key of a page and the filter's fingerprint as an opaque token. */
export function encodePageToken(lastKey: readonly (string | number)[], fingerprint: string): string {
  return Buffer.from(JSON.stringify({ v: 1, k: lastKey, f: fingerprint }), 'utf8').toString('base64url');
}

/**
 * Decodes a page token made by {@link encodePageToken} for the same filter.
 * @param shape the type of each key part, in order
 * @returns null for the empty token (the first page)
 * @throws BrokerError invalid `store.page_token` for a malformed token or one from another query
 */
export function decodePageToken(token: string, fingerprint: string, shape: readonly ('string' | 'number')[]): (string | number)[] | null {
  if (token === '') return null;
  const invalid = (): BrokerError =>
    new BrokerError('invalid', {
      code: 'store.page_token',
      publicMessage: 'the page token is not valid for this query: repeat the query without a page token',
    });
  if (token.length > MAX_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+$/.test(token)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (typeof parsed !== 'object' || parsed === null) throw invalid();
  const { v, k, f } = parsed as { v?: unknown; k?: unknown; f?: unknown };
  if (v !== 1 || f !== fingerprint || !Array.isArray(k) || k.length !== shape.length) throw invalid();
  const key = k as unknown[];
  for (const [index, type] of shape.entries()) {
    const part = key[index];
    if (type === 'number' ? !Number.isSafeInteger(part) : typeof part !== 'string') throw invalid();
  }
  return key as (string | number)[];
}
