/**
 * Warn-level findings about a valid policy: grants that are allowed but widen exposure
 * (validity × privilege scope × resources, the figure security and data protection people
 * compare). They never stop a policy from loading; the exposure report and `policy check`
 * print them.
 */
import { formatDurationMs } from '../core/index.js';
import { parseIpBlock } from './ip-block.js';
import type { IdentityPolicy } from './policy.js';
import { MANY_SEGMENTS } from './spiffe-pattern.js';
import { MAX_CERTIFICATE_TTL_MS, MAX_JOIN_TOKEN_TTL_MS, MAX_TOKEN_TTL_MS, type TtlLimits } from './ttl-limits.js';

/** One finding: where in the file, and what widens exposure there. */
export interface PolicyFinding {
  /** Dotted field path, as in {@link ConfigProblem}, e.g. `identities[2].tokens.requireBinding`. */
  readonly path: string;
  readonly message: string;
}

/** What the findings look at: the global limits and each identity in file order. */
export interface FindingsInput {
  readonly joinTokens: TtlLimits;
  readonly certificates: TtlLimits;
  readonly tokens: TtlLimits;
  readonly identities: readonly Omit<IdentityPolicy, 'description'>[];
}

/** IPv4 blocks wider than this many addresses, IPv6 blocks wider than a /64, are worth a look. */
const WIDE_IPV4_PREFIX = 24;
const WIDE_IPV6_PREFIX = 64;

/** The findings of a policy, in file order. */
export function policyFindings(policy: FindingsInput): PolicyFinding[] {
  const findings: PolicyFinding[] = [];
  const add = (path: string, message: string): void => {
    findings.push(Object.freeze({ path, message }));
  };
  const caps = { joinTokens: MAX_JOIN_TOKEN_TTL_MS, certificates: MAX_CERTIFICATE_TTL_MS, tokens: MAX_TOKEN_TTL_MS } as const;
  for (const block of ['joinTokens', 'certificates', 'tokens'] as const) {
    if (policy[block].maxTtlMs === caps[block]) {
      add(`${block}.maxTtl`, `is the hard cap (${formatDurationMs(caps[block])}): the policy does not lower it for anyone`);
    }
  }
  if (!policy.identities.some((identity) => identity.role === 'operator')) {
    add('identities', 'no operator identity: nobody can create join tokens, issue or revoke certificates');
  }

  policy.identities.forEach((identity, index) => {
    const at = `identities[${index}]`;
    if (identity.isPattern && identity.id.endsWith(`/${MANY_SEGMENTS}`)) {
      add(`${at}.id`, `ends with "/${MANY_SEGMENTS}": it grants to workloads at any depth below it, including ones that do not exist yet`);
    }
    if (identity.certificates.maxTtlMs === policy.certificates.maxTtlMs) {
      add(`${at}.certificates.maxTtl`, `is the global maximum (${formatDurationMs(policy.certificates.maxTtlMs)}): lower it unless this identity needs the longest certificates`);
    }
    if (identity.tokens !== null) {
      if (identity.tokens.maxTtlMs === policy.tokens.maxTtlMs) {
        add(`${at}.tokens.maxTtl`, `is the global maximum (${formatDurationMs(policy.tokens.maxTtlMs)}): lower it unless this identity needs the longest tokens`);
      }
      if (!identity.tokens.requireBinding) {
        add(`${at}.tokens.requireBinding`, 'is false: its tokens are bearer tokens that work for whoever holds them until they expire');
      }
      if (identity.resources.length === 0) {
        add(`${at}.resources`, 'is empty although the identity gets tokens: the exposure report cannot say what they reach');
      }
    }
    identity.dnsNames.forEach((name, i) => {
      if (name.startsWith('*.')) add(`${at}.dnsNames[${i}]`, `"${name}" allows any name one label below ${name.slice(2)}`);
    });
    identity.ipAddresses.forEach((text, i) => {
      const block = parseIpBlock(text);
      if (block === null) return;
      const wide = block.address.length === 4 ? block.prefixLength < WIDE_IPV4_PREFIX : block.prefixLength < WIDE_IPV6_PREFIX;
      if (wide) add(`${at}.ipAddresses[${i}]`, `"${text}" allows 2^${block.address.length * 8 - block.prefixLength} addresses`);
    });
    if (identity.role === 'operator' && (identity.dnsNames.length > 0 || identity.ipAddresses.length > 0)) {
      add(at, 'is an operator with DNS or IP SANs: operator certificates are client certificates and need none');
    }
  });
  return findings;
}
