/**
 * The DNS SANs an identity may get, as policy writes them: an exact name
 * (`import.pipeline.internal`) or `*.suffix` (`*.detect.pipeline.internal`), which src/pki reads
 * as "exactly one label in front of suffix" — the way TLS wildcards match. Issued certificates
 * never carry the wildcard itself.
 *
 * Policy is stricter than a resolver: lowercase letter-digit-hyphen labels of 1–63 characters,
 * at most 253 characters, no trailing dot, `*` only as the whole first label, and the suffix of a
 * wildcard has at least two labels (`*.internal` would hand out names across a whole zone).
 * test/unit/policy checks that src/pki accepts every name this accepts.
 */

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Longest DNS name in text form (RFC 1035 §2.3.4, without the root's trailing dot). */
const MAX_DNS_NAME_LENGTH = 253;

/** Why `text` is not a DNS name pattern policy accepts (a phrase), or null if it is one. */
export function dnsPatternProblem(text: string): string | null {
  if (text.length === 0) return 'is empty';
  if (text.length > MAX_DNS_NAME_LENGTH) return `is longer than ${MAX_DNS_NAME_LENGTH} characters`;
  if (text.endsWith('.')) return 'ends with "."; write the name without the root dot';
  if (text !== text.toLowerCase()) return 'has uppercase letters: write DNS names in lowercase';
  const wildcard = text.startsWith('*.');
  const labels = (wildcard ? text.slice(2) : text).split('.');
  if (labels.some((label) => label.includes('*'))) return 'has "*" outside the first label: "*" may only be the whole first label ("*.suffix")';
  if (wildcard && labels.length < 2) return 'is a wildcard over a single-label suffix: "*." needs a suffix of at least two labels';
  for (const label of labels) {
    if (label === '') return 'has an empty label';
    if (!LABEL.test(label)) {
      return `has the invalid label "${label.slice(0, 63)}": labels are 1 to 63 lowercase letters, digits and inner hyphens`;
    }
  }
  return null;
}
