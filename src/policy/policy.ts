/**
 * Who may get what (DESIGN.md invariant 6: least privilege, nothing granted by default;
 * invariant 4: short TTLs that policy can only lower). A {@link Policy} is one validated,
 * immutable version of `pki/policy.yaml`; `PolicyHolder` swaps versions in a running broker.
 *
 * ```yaml
 * version: 1
 * trustDomain: anonymizer.local
 * joinTokens: { defaultTtl: 15m, maxTtl: 1h }    # default ≤ 15m, max ≤ 1h
 * certificates: { defaultTtl: 1h, maxTtl: 24h }  # default ≤ 1h,  max ≤ 24h
 * tokens: { defaultTtl: 5m, maxTtl: 1h }         # default ≤ 5m,  max ≤ 1h
 * identities:
 *   - id: spiffe://anonymizer.local/pipeline/import   # exact ID, or a pattern with `*` / trailing `/**`
 *     role: service                                   # service | operator (operators: exact IDs only)
 *     description: reads uploads from the ingest bucket
 *     dnsNames: [import.pipeline.internal]            # exact or `*.suffix`; default none
 *     ipAddresses: []                                 # addresses or CIDR blocks; default none
 *     certificates: { defaultTtl: 1h, maxTtl: 4h }    # optional; each ≤ the global one
 *     tokens:                                         # optional; absent = no tokens
 *       audiences: [storage.ingest]
 *       scopes: [media.source.read]
 *       defaultTtl: 5m                                # optional; ≤ global tokens.defaultTtl
 *       maxTtl: 15m                                   # optional; ≤ global tokens.maxTtl
 *       requireBinding: true                          # default true (RFC 8705 cnf x5t#S256)
 *     resources: [bucket:ingest]                      # names, for the exposure report
 * ```
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ConfigError, configErrorMap, parseConfig, schemaProblems, type ConfigProblem } from '../config/index.js';
import { crossFieldProblems, inDocumentOrder } from './policy-checks.js';
import { policyFindings, type PolicyFinding } from './policy-findings.js';
import { policySchema, type IdentityInput, type PolicyInput, type Role } from './policy-schema.js';
import { parseSpiffePattern, spiffePatternMatches, type SpiffePattern } from './spiffe-pattern.js';
import type { TokenGrant } from './token-grant.js';
import type { TtlLimits } from './ttl-limits.js';

/** What one identity (or every identity a pattern matches) may get. Deep-frozen. */
export interface IdentityPolicy {
  /** The SPIFFE ID or pattern as written in the file. */
  readonly id: string;
  readonly role: Role;
  readonly description: string;
  /** DNS SANs allowed: exact lowercase names or `*.suffix`. Empty: none. */
  readonly dnsNames: readonly string[];
  /** IP SANs allowed: addresses or CIDR blocks. Empty: none. */
  readonly ipAddresses: readonly string[];
  /** Effective certificate TTLs: the identity's where it sets them, else the global ones. */
  readonly certificates: TtlLimits;
  /** The tokens it may get (effective TTLs), or null: no tokens at all. */
  readonly tokens: TokenGrant | null;
  /** What its credentials reach (names only), for the exposure report. */
  readonly resources: readonly string[];
  /** True when `id` is a pattern (`*`, `**`) rather than one exact SPIFFE ID. */
  readonly isPattern: boolean;
}

interface PatternEntry {
  readonly pattern: SpiffePattern;
  readonly identity: IdentityPolicy;
}

/** One validated, immutable version of the issuance policy. */
export class Policy {
  /** Every identity's SPIFFE ID is in this trust domain. */
  readonly trustDomain: string;
  /** Join token TTLs (global only). */
  readonly joinTokens: TtlLimits;
  /** Global certificate TTLs; identities may only lower them. */
  readonly certificates: TtlLimits;
  /** Global signed-token TTLs; identities may only lower them. */
  readonly tokens: TtlLimits;
  /** SHA-256 (hex) of the source text's UTF-8 bytes: the policy's version in the audit log. */
  readonly sha256: string;
  /** The file (or other name) the policy came from. */
  readonly source: string;

  readonly #identities: readonly IdentityPolicy[];
  readonly #exact: ReadonlyMap<string, IdentityPolicy>;
  /** Patterns in precedence order: more literal segments first, then file order. */
  readonly #patterns: readonly PatternEntry[];
  readonly #findings: readonly PolicyFinding[];

  private constructor(input: PolicyInput, sha256: string, source: string) {
    this.trustDomain = input.trustDomain;
    this.joinTokens = limits(input.joinTokens);
    this.certificates = limits(input.certificates);
    this.tokens = limits(input.tokens);
    this.sha256 = sha256;
    this.source = source;
    const exact = new Map<string, IdentityPolicy>();
    const patterns: (PatternEntry & { readonly index: number })[] = [];
    const identities = input.identities.map((entry, index) => {
      const parsed = parseSpiffePattern(entry.id);
      // The schema accepted every id, so this cannot fail; stay safe if it ever does.
      if (!parsed.ok) throw new ConfigError(source, [{ path: `identities[${index}].id`, message: parsed.problem }]);
      const identity = identityPolicy(entry, parsed.pattern.isPattern, this.certificates, this.tokens);
      if (parsed.pattern.isPattern) patterns.push({ pattern: parsed.pattern, identity, index });
      else exact.set(entry.id, identity);
      return identity;
    });
    patterns.sort((a, b) => b.pattern.literalSegments - a.pattern.literalSegments || a.index - b.index);
    this.#identities = Object.freeze(identities);
    this.#exact = exact;
    this.#patterns = Object.freeze(patterns.map(({ pattern, identity }) => Object.freeze({ pattern, identity })));
    this.#findings = Object.freeze(policyFindings({ joinTokens: this.joinTokens, certificates: this.certificates, tokens: this.tokens, identities }));
    Object.freeze(this);
  }

  /**
   * Parses and validates a policy document.
   * @param text the YAML text
   * @param sourceName the file path (or other name) used in messages and as {@link source}
   * @throws ConfigError listing every problem at once, each with its field path: YAML syntax,
   *   unknown keys, wrong types, malformed IDs/patterns/names/addresses/audiences/scopes,
   *   duplicates, TTLs above their caps, IDs outside the trust domain, operator patterns
   */
  static parse(text: string, sourceName: string): Policy {
    const document: unknown = parseConfig(text, z.unknown(), sourceName);
    const result = policySchema.safeParse(document ?? {}, { error: configErrorMap });
    const problems: ConfigProblem[] = [
      ...(result.success ? [] : schemaProblems(result.error)),
      ...crossFieldProblems(document),
    ];
    if (!result.success || problems.length > 0) {
      throw new ConfigError(sourceName, inDocumentOrder(problems), result.success ? {} : { cause: result.error });
    }
    const sha256 = createHash('sha256').update(text, 'utf8').digest('hex');
    return new Policy(result.data, sha256, sourceName);
  }

  /**
   * The policy for a workload's SPIFFE ID: its exact entry if there is one, else the most
   * specific matching pattern (most literal segments; on a tie, the one earlier in the file).
   * @param spiffeId an exact SPIFFE ID (as taken from a verified certificate)
   * @returns null when nothing matches, or `spiffeId` is not a valid SPIFFE ID, or belongs to
   *   another trust domain: nothing is granted by default
   */
  lookup(spiffeId: string): IdentityPolicy | null {
    const exact = this.#exact.get(spiffeId);
    if (exact !== undefined) return exact;
    const parsed = parseSpiffePattern(spiffeId, false);
    if (!parsed.ok || parsed.pattern.trustDomain !== this.trustDomain) return null;
    return this.#patterns.find((entry) => spiffePatternMatches(entry.pattern, parsed.pattern))?.identity ?? null;
  }

  /** Every identity entry, in file order. */
  identities(): readonly IdentityPolicy[] {
    return this.#identities;
  }

  /**
   * Warn-level findings: grants that are valid but widen exposure (a maxTtl at the global or
   * hard cap, bearer tokens, `/**` patterns, wildcard DNS names, wide IP blocks, tokens without
   * listed resources, no operator). In file order; empty for a tight policy.
   */
  findings(): readonly PolicyFinding[] {
    return this.#findings;
  }
}

function limits(ttl: { readonly defaultTtl: number; readonly maxTtl: number }): TtlLimits {
  return Object.freeze({ defaultTtlMs: ttl.defaultTtl, maxTtlMs: ttl.maxTtl });
}

/**
 * An identity's effective limits: its own where set; an unset max is the global max; an unset
 * default is the global default, lowered to the identity's max when that is shorter.
 */
function effective(own: { readonly defaultTtl?: number | undefined; readonly maxTtl?: number | undefined } | undefined, global: TtlLimits): TtlLimits {
  const maxTtlMs = own?.maxTtl ?? global.maxTtlMs;
  const defaultTtlMs = own?.defaultTtl ?? Math.min(global.defaultTtlMs, maxTtlMs);
  return Object.freeze({ defaultTtlMs, maxTtlMs });
}

function identityPolicy(entry: IdentityInput, isPattern: boolean, certificates: TtlLimits, tokens: TtlLimits): IdentityPolicy {
  const grant = entry.tokens;
  return Object.freeze({
    id: entry.id,
    role: entry.role,
    description: entry.description,
    dnsNames: Object.freeze([...entry.dnsNames]),
    ipAddresses: Object.freeze([...entry.ipAddresses]),
    certificates: effective(entry.certificates, certificates),
    tokens:
      grant === undefined
        ? null
        : Object.freeze({
            audiences: Object.freeze([...grant.audiences]),
            scopes: Object.freeze([...grant.scopes]),
            ...effective(grant, tokens),
            requireBinding: grant.requireBinding,
          }),
    resources: Object.freeze([...entry.resources]),
    isPattern,
  });
}
