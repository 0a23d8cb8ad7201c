/**
 * SPIFFE IDs and the patterns policy writes for them.
 *
 * An ID follows the SPIFFE ID specification: `spiffe://<trust-domain>/<path>`, lowercase scheme;
 * trust domain of `[a-z0-9._-]` (1–255 bytes); path segments of `[A-Za-z0-9._-]`, none empty,
 * `.` or `..`; no query, fragment, port, userinfo or percent-encoding; at most 2048 bytes.
 * Policy additionally requires a path: the trust domain's own ID names no workload.
 *
 * A pattern is an ID with wildcard segments: `*` matches exactly one path segment, and a
 * trailing `**` matches one or more. Both stand only as whole segments (`imp*` is an error), `**`
 * only last, and a pattern keeps at least one literal segment: a catch-all would grant every
 * workload of the trust domain, which invariant 6 (nothing granted by default) forbids.
 *
 * This is the policy module's own small parser: src/pki sits above src/policy in the layering.
 * test/unit/policy checks that whatever this accepts as an ID, src/pki's `parseSpiffeId` accepts.
 */

/** Longest SPIFFE ID in bytes (SPIFFE ID spec §2.3). */
const MAX_ID_BYTES = 2048;
/** Longest trust domain name in bytes (SPIFFE ID spec §2.3). */
const MAX_TRUST_DOMAIN_BYTES = 255;
const SCHEME = 'spiffe://';
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** `*`: exactly one path segment. */
export const ONE_SEGMENT = '*';
/** `**` (last only): one or more path segments. */
export const MANY_SEGMENTS = '**';

/** A parsed SPIFFE ID or pattern. */
export interface SpiffePattern {
  /** As written. */
  readonly text: string;
  readonly trustDomain: string;
  /** Path segments without slashes; `*` and `**` are wildcards in a pattern. */
  readonly segments: readonly string[];
  /** True if any segment is a wildcard. */
  readonly isPattern: boolean;
  /** Number of literal (non-wildcard) segments: the specificity of a pattern. */
  readonly literalSegments: number;
}

/** The result of {@link parseSpiffePattern}: the pattern, or why the text is not one. */
export type SpiffePatternResult =
  | { readonly ok: true; readonly pattern: SpiffePattern }
  | { readonly ok: false; readonly problem: string };

/**
 * Why `text` is not a trust domain name (a phrase such as `has the uppercase letter "A"…`), or
 * null if it is one.
 */
export function trustDomainProblem(text: string): string | null {
  if (text.length === 0) return 'is empty';
  if (text.startsWith(SCHEME)) return 'must be written without "spiffe://"';
  if (Buffer.byteLength(text, 'utf8') > MAX_TRUST_DOMAIN_BYTES) return `is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`;
  if (TRUST_DOMAIN.test(text)) return null;
  const bad = firstCharOutside(text, TRUST_DOMAIN);
  return /^[A-Z]$/.test(bad)
    ? `has the uppercase letter "${bad}": trust domains are lowercase`
    : `has ${quoteChar(bad)}: a trust domain holds only lowercase letters, digits, ".", "-" and "_"`;
}

/**
 * Parses a SPIFFE ID, or with `allowWildcards` (the default) an ID pattern.
 * @returns the parsed pattern, or a phrase saying what is wrong (`has an empty path segment…`)
 */
export function parseSpiffePattern(text: string, allowWildcards = true): SpiffePatternResult {
  const fail = (problem: string): SpiffePatternResult => ({ ok: false, problem });
  if (text.length === 0) return fail('is empty');
  if (Buffer.byteLength(text, 'utf8') > MAX_ID_BYTES) return fail(`is longer than ${MAX_ID_BYTES} bytes`);
  if (!text.startsWith(SCHEME)) {
    return fail(text.toLowerCase().startsWith(SCHEME) ? 'must use the lowercase scheme "spiffe://"' : 'must start with "spiffe://"');
  }
  const rest = text.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const domainProblem = trustDomainProblem(trustDomain);
  if (domainProblem !== null) return fail(`has a trust domain that ${domainProblem}`);
  if (slash === -1 || slash === rest.length - 1) {
    return fail('names the trust domain itself, not a workload: add a path, e.g. spiffe://<trust-domain>/<service>');
  }
  const segments = rest.slice(slash + 1).split('/');
  let literalSegments = 0;
  for (const [index, segment] of segments.entries()) {
    const last = index === segments.length - 1;
    if (segment === '') return fail(last ? 'must not end with "/"' : 'has an empty path segment ("//")');
    if (segment === ONE_SEGMENT || segment === MANY_SEGMENTS) {
      if (!allowWildcards) return fail(`has the wildcard segment "${segment}": expected an exact SPIFFE ID`);
      if (segment === MANY_SEGMENTS && !last) return fail('has "**" before the last segment: "**" may only end a pattern');
      continue;
    }
    if (segment.includes('*')) {
      return fail(
        allowWildcards
          ? `has the segment "${printable(segment)}": "*" and "**" must be whole path segments`
          : `has "*" in its path: expected an exact SPIFFE ID`,
      );
    }
    if (segment === '.' || segment === '..') return fail(`has a "${segment}" path segment`);
    if (!SEGMENT.test(segment)) {
      const bad = firstCharOutside(segment, SEGMENT);
      return fail(`has ${quoteChar(bad)} in its path: a segment holds only letters, digits, ".", "-" and "_"`);
    }
    literalSegments++;
  }
  const isPattern = literalSegments < segments.length;
  if (isPattern && literalSegments === 0) {
    return fail('would match every workload of the trust domain: a pattern needs at least one literal path segment');
  }
  return {
    ok: true,
    pattern: Object.freeze({ text, trustDomain, segments: Object.freeze(segments), isPattern, literalSegments }),
  };
}

/**
 * True if the exact ID `id` (see {@link parseSpiffePattern} with `allowWildcards` false) is matched
 * by `pattern`: same trust domain; literal segments equal (case-sensitive, as SPIFFE compares);
 * `*` one segment of any content; a final `**` one or more segments.
 */
export function spiffePatternMatches(pattern: SpiffePattern, id: SpiffePattern): boolean {
  if (pattern.trustDomain !== id.trustDomain) return false;
  const { segments } = pattern;
  for (const [index, segment] of segments.entries()) {
    if (segment === MANY_SEGMENTS) return id.segments.length > index;
    const actual = id.segments[index];
    if (actual === undefined) return false;
    if (segment !== ONE_SEGMENT && segment !== actual) return false;
  }
  return id.segments.length === segments.length;
}

/** The first code point of `text` that `allowed` (anchored, one or more) rejects. */
function firstCharOutside(text: string, allowed: RegExp): string {
  for (const char of text) if (!allowed.test(char)) return char;
  return '';
}

function quoteChar(char: string): string {
  return char === '"' ? "'\"'" : `"${printable(char)}"`;
}

/** Text from a policy file shown in messages, control characters escaped, length bounded. */
function printable(text: string): string {
  const shown = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return shown.replace(/[\p{Cc}\\]/gu, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
