/**
 * SPIFFE IDs (`spiffe://<trust-domain>/<path>`), the workload identities credbroker issues
 * (DESIGN.md "Identity"), parsed as the SPIFFE ID specification says:
 *
 * - scheme `spiffe`, lowercase; no userinfo, port, query, fragment or percent-encoding;
 * - trust domain: 1–255 characters of `[a-z0-9._-]` (lowercase only);
 * - path: empty (the trust domain's own ID) or `/`-separated segments of `[A-Za-z0-9._-]`,
 *   none empty (no `//`, no trailing `/`), none `.` or `..`;
 * - at most 2048 bytes in all.
 */
import { invalid } from './pki-error.js';

/** A parsed, valid SPIFFE ID. */
export interface SpiffeId {
  /** The trust domain name, e.g. `anonymizer.prod`. */
  readonly trustDomain: string;
  /** `''` or a path starting with `/`, e.g. `/media/blur`. */
  readonly path: string;
  /** The URI form, `spiffe://<trustDomain><path>`. */
  toString(): string;
}

/** Maximum length of a SPIFFE ID in bytes (SPIFFE ID spec §2.3). */
export const MAX_SPIFFE_ID_BYTES = 2048;
/** Maximum length of a trust domain name in bytes (SPIFFE ID spec §2.3). */
export const MAX_TRUST_DOMAIN_BYTES = 255;

const SCHEME = 'spiffe://';
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const PATH_CHAR = /^[A-Za-z0-9._-]$/;

class ParsedSpiffeId implements SpiffeId {
  readonly trustDomain: string;
  readonly path: string;

  constructor(trustDomain: string, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
    Object.freeze(this);
  }

  toString(): string {
    return `${SCHEME}${this.trustDomain}${this.path}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/**
 * Checks a trust domain name and returns it.
 * @param text e.g. `anonymizer.prod` (without `spiffe://`)
 * @throws BrokerError invalid `pki.trust_domain` saying what is wrong
 */
export function parseTrustDomain(text: string): string {
  const problem = trustDomainProblem(text);
  if (problem !== null) throw invalid('pki.trust_domain', `trust domain "${printable(text)}" ${problem}`);
  return text;
}

/**
 * Parses a SPIFFE ID.
 * @param text e.g. `spiffe://anonymizer.prod/media/blur`
 * @throws BrokerError invalid `pki.spiffe_id` saying what is wrong
 */
export function parseSpiffeId(text: string): SpiffeId {
  const fail = (problem: string): never => {
    throw invalid('pki.spiffe_id', `SPIFFE ID "${printable(text)}" ${problem}`);
  };
  if (text.length === 0) fail('is empty');
  if (Buffer.byteLength(text, 'utf8') > MAX_SPIFFE_ID_BYTES) fail(`is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  if (!text.startsWith(SCHEME)) {
    fail(text.toLowerCase().startsWith(SCHEME) ? 'must use the lowercase scheme "spiffe://"' : 'must start with "spiffe://"');
  }
  if (text.includes('?')) fail('must not have a query ("?")');
  if (text.includes('#')) fail('must not have a fragment ("#")');
  if (text.includes('%')) fail('must not contain percent-encoding ("%")');
  const rest = text.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain.includes('@')) fail('must not have userinfo ("@") before the trust domain');
  if (trustDomain.includes(':')) fail('must not have a port (":") after the trust domain');
  const domainProblem = trustDomainProblem(trustDomain);
  if (domainProblem !== null) fail(`has a trust domain that ${domainProblem}`);
  if (path !== '') {
    const segments = path.slice(1).split('/');
    segments.forEach((segment, index) => {
      if (segment === '') fail(index === segments.length - 1 ? 'must not end with "/"' : 'has an empty path segment ("//")');
      if (segment === '.' || segment === '..') fail(`has a "${segment}" path segment`);
      for (const char of segment) {
        if (!PATH_CHAR.test(char)) {
          fail(`has "${printable(char)}" in its path: segments may hold only letters, digits, ".", "-" and "_"`);
        }
      }
    });
  }
  return new ParsedSpiffeId(trustDomain, path);
}

/** True when two SPIFFE IDs are the same identity (exact comparison, as the spec defines). */
export function sameSpiffeId(a: SpiffeId, b: SpiffeId): boolean {
  return a.trustDomain === b.trustDomain && a.path === b.path;
}

function trustDomainProblem(text: string): string | null {
  if (text.length === 0) return 'is missing';
  if (text.startsWith(SCHEME)) return 'must be given without "spiffe://"';
  if (Buffer.byteLength(text, 'utf8') > MAX_TRUST_DOMAIN_BYTES) return `is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`;
  for (const char of text) {
    if (!TRUST_DOMAIN_CHAR.test(char)) {
      return /^[A-Z]$/.test(char)
        ? `has the uppercase letter "${char}": trust domains are lowercase`
        : `has "${printable(char)}": trust domains may hold only lowercase letters, digits, ".", "-" and "_"`;
    }
  }
  return null;
}

/** Caller text shown in messages, with control characters escaped and length bounded. */
function printable(text: string): string {
  const shown = text.length > 120 ? `${text.slice(0, 120)}…` : text;
  return shown.replace(/[\p{Cc}"\\]/gu, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
