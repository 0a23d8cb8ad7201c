/**
 * The nameConstraints extension (RFC 5280 §4.2.1.10): encoding the SPIFFE trust-domain
 * constraint of credbroker's intermediates, decoding constraints found in a chain, and checking
 * names against them.
 *
 * Matching follows RFC 5280 as OpenSSL and Go implement it:
 * - uniformResourceIdentifier constraints apply to the host of the URI: `anonymizer.prod` allows
 *   exactly that host (so `spiffe://anonymizer.prod/…`), `.anonymizer.prod` allows hosts below
 *   it. A URI without a `scheme://host` authority matches no constraint.
 * - dNSName: the constraint and every name formed by adding labels on its left.
 * - iPAddress: address and mask.
 * Constraints of other kinds (email, directoryName, …) are not checked by credbroker, so a chain
 * that carries them is refused rather than half-checked.
 */
import { DerCursor, DerError, derChildren } from './der-reader.js';
import { derContext, derSequence } from './der-writer.js';
import { dnsNameWithinConstraint } from './dns-name.js';
import { decodeGeneralName, encodeGeneralName, type EncodableName, type GeneralName } from './general-names.js';

/** Decoded name constraints. */
export interface NameConstraints {
  readonly permitted: readonly GeneralName[];
  readonly excluded: readonly GeneralName[];
}

/**
 * Encodes `NameConstraints` with permitted subtrees only (no minimum/maximum: RFC 5280 says
 * minimum MUST be zero and maximum MUST be absent).
 * @throws RangeError if `permitted` is empty (an empty extension is not allowed either)
 */
export function encodeNameConstraints(permitted: readonly EncodableName[]): Buffer {
  if (permitted.length === 0) throw new RangeError('name constraints need at least one permitted subtree');
  const subtrees = permitted.map((name) => derSequence(encodeGeneralName(name)));
  return derSequence(derContext(0, Buffer.concat(subtrees), true));
}

/**
 * Decodes a nameConstraints extension value.
 * @throws DerError if malformed, or if a subtree has a non-zero minimum or a maximum
 */
export function decodeNameConstraints(value: Uint8Array): NameConstraints {
  const what = 'nameConstraints';
  const outer = new DerCursor(value, what);
  const body = derChildren(outer.read(0x30, 'NameConstraints'), what);
  outer.end();
  const permitted = readSubtrees(body, 0xa0, what);
  const excluded = readSubtrees(body, 0xa1, what);
  body.end();
  if (permitted.length === 0 && excluded.length === 0) throw new DerError(`${what}: empty`);
  return { permitted, excluded };
}

/** The result of checking one name: null if allowed, else why not. */
export type ConstraintViolation = string | null;

/**
 * Checks one SAN name against decoded constraints.
 * @returns null when allowed, else a phrase naming the violated rule
 */
export function checkNameAgainstConstraints(name: GeneralName, constraints: NameConstraints): ConstraintViolation {
  const sameKind = (list: readonly GeneralName[]): GeneralName[] => list.filter((c) => c.kind === name.kind);
  for (const constraint of sameKind(constraints.excluded)) {
    if (matches(name, constraint)) return `${describe(name)} is in the excluded subtree ${constraint.text}`;
  }
  const permitted = sameKind(constraints.permitted);
  if (permitted.length > 0 && !permitted.some((constraint) => matches(name, constraint))) {
    return `${describe(name)} is outside the permitted subtrees (${permitted.map((c) => c.text).join(', ')})`;
  }
  return null;
}

/** Kinds of constraint {@link checkNameAgainstConstraints} understands. */
export const CHECKED_CONSTRAINT_KINDS: ReadonlySet<string> = new Set(['uniformResourceIdentifier', 'dNSName', 'iPAddress']);

/** The host of a URI with an authority (`scheme://host[:port]/…`), or null. */
export function uriHost(uri: string): string | null {
  const match = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(uri);
  if (match === null) return null;
  let authority = match[1] ?? '';
  const at = authority.lastIndexOf('@');
  if (at !== -1) authority = authority.slice(at + 1);
  const host = authority.startsWith('[') ? authority.slice(0, authority.indexOf(']') + 1) : authority.split(':')[0] ?? '';
  return host === '' ? null : host.toLowerCase();
}

function readSubtrees(body: DerCursor, tag: number, what: string): GeneralName[] {
  const element = body.readOptional(tag);
  if (element === undefined) return [];
  const cursor = derChildren(element, what);
  const names: GeneralName[] = [];
  while (!cursor.done) {
    const subtree = derChildren(cursor.read(0x30, 'GeneralSubtree'), what);
    names.push(decodeGeneralName(subtree.next(), true, what));
    // minimum [0] DEFAULT 0 (so absent in DER) and maximum [1]: RFC 5280 forbids both.
    if (!subtree.done) throw new DerError(`${what}: subtrees with minimum or maximum are not supported`);
  }
  if (names.length === 0) throw new DerError(`${what}: empty subtrees`);
  return names;
}

function matches(name: GeneralName, constraint: GeneralName): boolean {
  switch (name.kind) {
    case 'uniformResourceIdentifier': {
      const host = uriHost(name.text);
      if (host === null) return false;
      const base = constraint.text.toLowerCase();
      return base.startsWith('.') ? host.endsWith(base) && host.length > base.length : host === base;
    }
    case 'dNSName':
      return dnsNameWithinConstraint(name.text, constraint.text);
    case 'iPAddress': {
      const half = constraint.content.length / 2;
      if (name.content.length !== half) return false;
      return name.content.every((byte, i) => (byte & (constraint.content[half + i] ?? 0)) === ((constraint.content[i] ?? 0) & (constraint.content[half + i] ?? 0)));
    }
    default:
      return false;
  }
}

function describe(name: GeneralName): string {
  const label = name.kind === 'uniformResourceIdentifier' ? 'URI' : name.kind === 'dNSName' ? 'DNS name' : name.kind === 'iPAddress' ? 'IP address' : name.kind;
  return `${label} ${name.text}`;
}
