/**
 * `credbroker report exposure`: every identity entry of the policy ranked by
 *
 *     exposure = validity (hours) × privilege scope × resources reachable
 *
 * the comparison the security and data protection people use ("the most dangerous secrets are
 * long-lived ones with broad privileges and access to many repositories"). It is not a normative
 * figure: it orders identities so the widest grants are read first, and every score comes with
 * its factors and the reasons it is flagged. Pure: a function of the policy and `now`.
 *
 * - validity: how long a stolen credential works. The certificate's maxTtl, plus the token maxTtl
 *   when the identity gets tokens (a token minted just before the certificate expires outlives
 *   it by that much).
 * - privilege scope: the (audience, scope) pairs its tokens may carry (audiences × scopes); 1 for
 *   a certificate without tokens. An operator may obtain any identity's credentials (Issue,
 *   CreateJoinToken) and run the broker's operations, so its scope is every distinct pair of the
 *   policy × {@link OPERATOR_SCOPE_WEIGHT}.
 * - resources: the names in its `resources` list (1 when none are listed: unknown, not zero);
 *   an operator reaches every resource of the policy.
 */
import { HOUR_MS } from '../../core/index.js';
import type { IdentityPolicy, Policy } from '../../policy/index.js';
import type { IdentityMatch } from './metrics-report.js';
import { percentile } from './statistics.js';
import { formatMs } from './units.js';

/** Version of the JSON shape; raised only for an incompatible change. */
export const EXPOSURE_REPORT_VERSION = 1;

/** An operator's broker operations (issue, revoke, rotate, join tokens, audit) weigh this many times every grant of the policy. */
export const OPERATOR_SCOPE_WEIGHT = 10;

/** Tukey's fence: a score above Q3 + 1.5 × IQR of all scores is an outlier. */
const FENCE_IQR_FACTOR = 1.5;
/** Fewer identities than this give no meaningful quartiles: no score outliers. */
const MIN_IDENTITIES_FOR_FENCE = 4;

/** Why an identity is flagged. */
export type ExposureFlagCode =
  | 'operator'
  | 'every-scope'
  | 'score-outlier'
  | 'any-depth-pattern'
  | 'certificate-ttl-at-cap'
  | 'token-ttl-at-cap'
  | 'bearer-tokens'
  | 'wildcard-dns'
  | 'wide-ip-block'
  | 'no-resources'
  | 'operator-sans'
  | 'policy-finding';

/** One flag: a code to filter on, and a sentence that says why. */
export interface ExposureFlag {
  readonly code: ExposureFlagCode;
  readonly message: string;
  /** The policy field it is about (from the policy findings), or null. */
  readonly path: string | null;
}

/** One factor of a score, with the sentence that explains it. */
export interface ExposureFactor {
  readonly value: number;
  readonly explanation: string;
}

/** One identity entry, scored. */
export interface ExposureEntry {
  /** 1 for the highest exposure. */
  readonly rank: number;
  readonly id: string;
  readonly role: string;
  readonly match: IdentityMatch;
  /** validity.value × privilegeScope.value × resources.value, rounded to 2 decimals. */
  readonly score: number;
  /** Hours. */
  readonly validity: ExposureFactor & { readonly certificateMaxTtlMs: number; readonly tokenMaxTtlMs: number | null };
  readonly privilegeScope: ExposureFactor & { readonly audiences: number; readonly scopes: number };
  readonly resources: ExposureFactor & { readonly names: readonly string[] };
  readonly flags: readonly ExposureFlag[];
}

/** The ranking. */
export interface ExposureReport {
  readonly kind: 'credbroker.exposure';
  readonly version: typeof EXPOSURE_REPORT_VERSION;
  readonly generatedAt: string;
  readonly policy: { readonly source: string; readonly sha256: string; readonly trustDomain: string };
  readonly formula: string;
  /** Scores above this are flagged `score-outlier`; null with too few identities. */
  readonly outlierAbove: number | null;
  /** Highest exposure first; ties by ID. */
  readonly identities: readonly ExposureEntry[];
  /** Policy findings not about one identity (global caps, no operator). */
  readonly policyFindings: readonly { readonly path: string; readonly message: string }[];
}

const FINDING_PATH = /^identities\[(\d+)\](?:\.(.+))?$/;

/** The flag a policy finding stands for, by the field it names below `identities[i]`. */
function findingCode(field: string | undefined): ExposureFlagCode {
  if (field === undefined) return 'operator-sans';
  if (field === 'id') return 'any-depth-pattern';
  if (field === 'certificates.maxTtl') return 'certificate-ttl-at-cap';
  if (field === 'tokens.maxTtl') return 'token-ttl-at-cap';
  if (field === 'tokens.requireBinding') return 'bearer-tokens';
  if (field === 'resources') return 'no-resources';
  if (/^dnsNames\[\d+\]$/.test(field)) return 'wildcard-dns';
  if (/^ipAddresses\[\d+\]$/.test(field)) return 'wide-ip-block';
  return 'policy-finding';
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

function listed(names: readonly string[], max = 6): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

function matchOf(identity: IdentityPolicy): IdentityMatch {
  if (!identity.isPattern) return 'exact';
  return identity.id.endsWith('/**') ? 'any-depth' : 'pattern';
}

interface Scored {
  readonly identity: IdentityPolicy;
  readonly index: number;
  readonly entry: Omit<ExposureEntry, 'rank' | 'flags'>;
}

/** Ranks the identities of `policy` by exposure; `now` is only the report's time stamp. */
export function exposureReport(policy: Policy, now: Date): ExposureReport {
  const identities = policy.identities();
  const pairs = new Set<string>();
  const allScopes = new Set<string>();
  const allResources = new Set<string>();
  for (const identity of identities) {
    for (const resource of identity.resources) allResources.add(resource);
    if (identity.tokens === null) continue;
    for (const scope of identity.tokens.scopes) allScopes.add(scope);
    for (const audience of identity.tokens.audiences) for (const scope of identity.tokens.scopes) pairs.add(`${audience} ${scope}`);
  }

  const scored: Scored[] = identities.map((identity, index) => {
    const grant = identity.tokens;
    const certificateMaxTtlMs = identity.certificates.maxTtlMs;
    const tokenMaxTtlMs = grant?.maxTtlMs ?? null;
    const validityHours = (certificateMaxTtlMs + (tokenMaxTtlMs ?? 0)) / HOUR_MS;
    const validity = {
      value: round2(validityHours),
      certificateMaxTtlMs,
      tokenMaxTtlMs,
      explanation:
        tokenMaxTtlMs === null
          ? `certificate maxTtl ${formatMs(certificateMaxTtlMs)}; no tokens`
          : `certificate maxTtl ${formatMs(certificateMaxTtlMs)} + token maxTtl ${formatMs(tokenMaxTtlMs)} (a token minted at the certificate's end outlives it)`,
    };
    const audiences = grant?.audiences.length ?? 0;
    const scopes = grant?.scopes.length ?? 0;
    const privilegeScope =
      identity.role === 'operator'
        ? {
            value: OPERATOR_SCOPE_WEIGHT * Math.max(1, pairs.size),
            audiences,
            scopes,
            explanation: `operator: may obtain any identity's credentials (Issue, CreateJoinToken), so every audience × scope pair of the policy (${pairs.size}), × ${OPERATOR_SCOPE_WEIGHT} for revoke, rotate and audit`,
          }
        : grant === null
          ? { value: 1, audiences, scopes, explanation: 'certificate only (mTLS identity), no tokens' }
          : { value: audiences * scopes, audiences, scopes, explanation: `${audiences} ${audiences === 1 ? 'audience' : 'audiences'} × ${scopes} ${scopes === 1 ? 'scope' : 'scopes'}` };
    const names = identity.role === 'operator' ? [...allResources].sort() : [...identity.resources];
    const resources = {
      value: Math.max(1, names.length),
      names,
      explanation:
        identity.role === 'operator'
          ? `every resource of the policy, through the identities it can mint: ${names.length === 0 ? 'none listed (counted as 1)' : listed(names)}`
          : names.length === 0
            ? 'none listed (counted as 1: unknown, not nothing)'
            : listed(names),
    };
    return {
      identity,
      index,
      entry: {
        id: identity.id,
        role: identity.role,
        match: matchOf(identity),
        score: round2(validityHours * privilegeScope.value * resources.value),
        validity,
        privilegeScope,
        resources,
      },
    };
  });

  const scores = scored.map((s) => s.entry.score).sort((a, b) => a - b);
  let outlierAbove: number | null = null;
  if (scores.length >= MIN_IDENTITIES_FOR_FENCE) {
    const q1 = percentile(scores, 0.25) ?? 0;
    const q3 = percentile(scores, 0.75) ?? 0;
    outlierAbove = round2(q3 + FENCE_IQR_FACTOR * (q3 - q1));
  }

  const byIndex = new Map<number, ExposureFlag[]>();
  const policyFindings: { path: string; message: string }[] = [];
  for (const finding of policy.findings()) {
    const match = FINDING_PATH.exec(finding.path);
    if (match === null) {
      policyFindings.push({ path: finding.path, message: finding.message });
      continue;
    }
    const index = Number(match[1]);
    const flags = byIndex.get(index) ?? [];
    flags.push({ code: findingCode(match[2]), message: `${finding.path} ${finding.message}`, path: finding.path });
    byIndex.set(index, flags);
  }

  const ranked = scored
    .map(({ identity, index, entry }) => {
      const flags: ExposureFlag[] = [];
      if (identity.role === 'operator') flags.push({ code: 'operator', message: 'can mint any identity\'s credentials, revoke certificates, force rotations and read the audit log', path: null });
      if (identity.tokens !== null && allScopes.size > 1 && [...allScopes].every((scope) => identity.tokens?.scopes.includes(scope) === true)) {
        flags.push({ code: 'every-scope', message: `holds every scope the policy grants anyone (${allScopes.size})`, path: null });
      }
      if (outlierAbove !== null && entry.score > outlierAbove) {
        flags.push({ code: 'score-outlier', message: `exposure ${entry.score} is above ${outlierAbove} (Q3 + 1.5 × IQR of all identities' scores)`, path: null });
      }
      flags.push(...(byIndex.get(index) ?? []));
      return { ...entry, flags };
    })
    .sort((a, b) => b.score - a.score || a.id.localeCompare(b.id))
    .map((entry, position) => ({ rank: position + 1, ...entry }));

  return {
    kind: 'credbroker.exposure',
    version: EXPOSURE_REPORT_VERSION,
    generatedAt: now.toISOString(),
    policy: { source: policy.source, sha256: policy.sha256, trustDomain: policy.trustDomain },
    formula: 'exposure = validity (hours) × privilege scope (audience × scope pairs) × resources reachable',
    outlierAbove,
    identities: ranked,
    policyFindings,
  };
}
