/**
 * DNS names for SANs and the policy patterns that allow them.
 *
 * A DNS SAN is a preferred-syntax host name (RFC 1034 §3.5 as relaxed by RFC 1123): labels of
 * letters, digits and inner hyphens, 1–63 characters each, at most 253 in all, no trailing dot.
 * Names are compared in lowercase. credbroker never issues wildcard DNS SANs: a wildcard would
 * hand one identity every name under a domain.
 *
 * Policy patterns are exact names (`blur.media.internal`) or `*.suffix` (`*.media.internal`),
 * which allows exactly one label in front of the suffix (`a.media.internal`, not
 * `a.b.media.internal`, not `media.internal`) — the way TLS wildcards match.
 */

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Longest DNS name in text form (RFC 1035 §2.3.4, without the root's trailing dot). */
export const MAX_DNS_NAME_LENGTH = 253;

/**
 * Why `text` is not a DNS name credbroker issues (a phrase such as `has an empty label`), or
 * null if it is one. Its normalized form is `text.toLowerCase()`.
 */
export function dnsNameProblem(text: string): string | null {
  if (text.length === 0) return 'is empty';
  if (text.length > MAX_DNS_NAME_LENGTH) return `is longer than ${MAX_DNS_NAME_LENGTH} characters`;
  if (text.includes('*')) return 'is a wildcard; credbroker issues exact DNS names only';
  if (text.endsWith('.')) return 'ends with "."';
  for (const label of text.toLowerCase().split('.')) {
    if (!LABEL.test(label)) return label === '' ? 'has an empty label' : `has the invalid label "${label.slice(0, 63)}"`;
  }
  return null;
}

/**
 * True if a policy pattern allows a (normalized) DNS name. A malformed pattern allows nothing.
 */
export function dnsPatternAllows(pattern: string, name: string): boolean {
  const lower = pattern.toLowerCase();
  if (lower.startsWith('*.')) {
    const suffix = lower.slice(2);
    if (dnsNameProblem(suffix) !== null) return false;
    if (!name.endsWith(`.${suffix}`)) return false;
    const head = name.slice(0, name.length - suffix.length - 1);
    return head.length > 0 && !head.includes('.');
  }
  return dnsNameProblem(lower) === null && lower === name;
}

/**
 * True if a DNS name lies within an RFC 5280 §4.2.1.10 dNSName constraint: the constraint
 * itself or any name formed by adding labels to its left (`example.com` covers
 * `a.example.com`, not `badexample.com`). A constraint with a leading dot covers only the names
 * below it. The empty constraint covers every name.
 */
export function dnsNameWithinConstraint(name: string, constraint: string): boolean {
  const lowerName = name.toLowerCase();
  const lowerConstraint = constraint.toLowerCase();
  if (lowerConstraint === '') return true;
  if (lowerConstraint.startsWith('.')) return lowerName.endsWith(lowerConstraint);
  return lowerName === lowerConstraint || lowerName.endsWith(`.${lowerConstraint}`);
}
