/**
 * What `credbroker report` finds: the six secrets-management measures (secret TTL, rotation MTTR,
 * rotation coverage, permission granularity, retrieval latency, auditability) for one window.
 * This is the `--json` output: field names are stable; new fields may be added, none renamed.
 * Every duration is in milliseconds (`…Ms`), every instant an ISO 8601 string, every share a
 * {@link Ratio} (null share when there is nothing to divide by).
 */
import type { CertificateProfileName } from '../../store/index.js';
import type { Distribution, Histogram, Ratio } from './statistics.js';

/** Version of the JSON shape; raised only for an incompatible change. */
export const METRICS_REPORT_VERSION = 1;

/** Lifetimes of one kind of credential issued in the window. */
export interface LifetimeSummary {
  /** Lifetimes, rounded up to whole seconds (X.509 and JWT count validity in seconds). */
  readonly lifetimeMs: Distribution;
  /**
   * Credentials issued within a second of their identity's cap (the policy's maxTtl for that
   * identity), of those whose identity the current policy knows.
   */
  readonly atCap: Ratio;
  /** Credentials whose identity the current policy no longer knows (no cap to compare with). */
  readonly notInPolicy: number;
  /** Lifetimes per bucket (edges in ms), for the TTL histogram. */
  readonly histogram: Histogram;
}

/** Certificate lifetimes of one profile. */
export interface ProfileLifetimes extends LifetimeSummary {
  readonly profile: CertificateProfileName;
}

/** Secret TTL: how long the credentials issued in the window live. */
export interface SecretTtlSection {
  readonly certificates: {
    /** Every certificate issued in the window (Enroll, Renew, Issue). */
    readonly all: LifetimeSummary;
    /** Per profile that issued any. */
    readonly byProfile: readonly ProfileLifetimes[];
  };
  /** Signed tokens (IssueToken): `expiresAt` − decision time. */
  readonly tokens: LifetimeSummary & {
    /** Tokens bound to the caller's certificate (cnf x5t#S256), of all issued. */
    readonly bound: Ratio;
  };
  /** Join tokens created in the window (CreateJoinToken), cap = the policy's joinTokens.maxTtl. */
  readonly joinTokens: LifetimeSummary & {
    readonly created: number;
    /** Created without a recorded TTL (older entries): counted, not in the lifetimes. */
    readonly withoutTtl: number;
    /** Enrollments in the window (each spends one join token). */
    readonly redeemed: number;
    /** Unused, unexpired join tokens at `window.asOf`. */
    readonly outstandingAsOf: number;
  };
}

/** One forced rotation (ForceRotate) requested in the window; its state at report time. */
export interface RotationSummary {
  readonly rotationId: string;
  readonly selector: string;
  readonly reason: string;
  readonly requestedBy: string;
  readonly requestedAt: string;
  readonly targeted: number;
  /** Targets whose holder had a Watch stream open when the rotation was asked. */
  readonly connected: number;
  readonly rotated: number;
  /** Still waiting for their holder to renew (and not yet expired). */
  readonly pending: number;
  /** Pending past the old certificate's notAfter: they expired unrenewed. */
  readonly expired: number;
  /** Revoked at once (keyCompromise) rather than rotated. */
  readonly revoked: number;
  /** Time from the request until each target's new certificate was issued (rotated targets). */
  readonly mttrMs: Distribution;
  /** Age of the pending targets (they have been open this long; their MTTR will be longer). Null when none. */
  readonly oldestPendingAgeMs: number | null;
  readonly complete: boolean;
}

/** Rotation MTTR: how fast forced rotations replaced their certificates. */
export interface RotationMttrSection {
  /** Oldest first. */
  readonly rotations: readonly RotationSummary[];
  /** Every rotation of the window together (MTTR over every rotated target). */
  readonly overall: Omit<RotationSummary, 'rotationId' | 'selector' | 'reason' | 'requestedBy' | 'requestedAt' | 'complete'> & { readonly rotations: number };
}

/** An identity with a live certificate that did not renew in the window. */
export interface NotRenewedIdentity {
  readonly spiffeId: string;
  readonly profile: CertificateProfileName;
  /**
   * Its newest live certificate is not yet at two thirds of its lifetime (the agent's renewal
   * point): a window shorter than the renewal interval cannot show its renewal.
   */
  readonly notYetDue: boolean;
}

/** Rotation coverage: what share of live credentials rotate without a person. */
export interface RotationCoverageSection {
  /** Identities with a live certificate at `window.asOf` that renewed (Renew) in the window. */
  readonly automatic: Ratio;
  readonly byProfile: readonly { readonly profile: CertificateProfileName; readonly identities: Ratio }[];
  /** Sorted by SPIFFE ID. */
  readonly notRenewed: readonly NotRenewedIdentity[];
  /** Targets of the window's forced rotations replaced by a renewal, of all targeted. */
  readonly forced: Ratio;
}

/** How an identity entry names its workloads. */
export type IdentityMatch = 'exact' | 'pattern' | 'any-depth';

/** One identity entry of the policy, as granted. */
export interface GrantGranularity {
  readonly id: string;
  readonly role: string;
  readonly match: IdentityMatch;
  /** 0 when the identity gets no tokens. */
  readonly audiences: number;
  readonly scopes: number;
  /** audiences × scopes: the (audience, scope) pairs a token of it may carry. */
  readonly pairs: number;
  readonly dnsNames: number;
  readonly wildcardDnsNames: number;
  readonly ipAddresses: number;
  readonly resources: number;
  /** True when its tokens are bearer tokens (requireBinding false); null without tokens. */
  readonly bearer: boolean | null;
}

/** One identity's tokens of the window, against its grant. */
export interface TokenUse {
  /** The SPIFFE ID that asked (the token's subject). */
  readonly spiffeId: string;
  /** The policy entry that grants it (the ID or pattern), null if the current policy does not know it. */
  readonly policyId: string | null;
  readonly tokens: number;
  readonly scopesPerToken: Distribution;
  /** Tokens that asked for fewer scopes than the grant holds. */
  readonly fewerThanGranted: Ratio;
  /** Distinct scopes asked for, of those granted. */
  readonly scopesUsed: Ratio;
  readonly audiencesUsed: Ratio;
  /** Granted scopes nobody asked for in the window: candidates to drop from the grant. */
  readonly unusedScopes: readonly string[];
}

/** Permission granularity: how narrow the grants are, on paper and in use. */
export interface PermissionGranularitySection {
  readonly policy: {
    readonly identities: number;
    readonly exact: number;
    readonly patterns: number;
    /** Patterns ending in `/**` (any depth). */
    readonly anyDepthPatterns: number;
    readonly withTokens: number;
    /** audiences × scopes over the identities with tokens. */
    readonly pairsPerGrant: Distribution;
    readonly wildcardDnsNames: number;
    readonly bearerGrants: number;
    /** Policy file order. */
    readonly byIdentity: readonly GrantGranularity[];
  };
  readonly use: {
    readonly tokens: number;
    readonly scopesPerToken: Distribution;
    /** Of the tokens whose identity the current policy knows. */
    readonly fewerThanGranted: Ratio;
    /** Sorted by SPIFFE ID. */
    readonly byIdentity: readonly TokenUse[];
  };
}

/** The actions whose latency the report measures. */
export const LATENCY_ACTIONS = Object.freeze(['Enroll', 'Renew', 'IssueToken'] as const);
/** One of {@link LATENCY_ACTIONS}. */
export type LatencyAction = (typeof LATENCY_ACTIONS)[number];

/** Retrieval latency: receipt of the call until its decision was recorded. */
export interface RetrievalLatencySection {
  readonly actions: readonly {
    readonly action: LatencyAction;
    readonly latencyMs: Distribution;
    /** Allowed entries without a recorded latency (written by an older broker). */
    readonly withoutLatency: number;
  }[];
}

/** Refusals of one reason. */
export interface RefusalCount {
  readonly outcome: 'denied' | 'failed';
  readonly reason: string;
  readonly count: number;
}

/** The audit verifier's verdict on the whole log (not only the window). */
export interface ChainVerification {
  readonly ok: boolean;
  readonly entriesVerified: number;
  readonly headSeq: number;
  /** True when checkpoint signatures were checked against `--audit-key`. */
  readonly signaturesChecked: boolean;
  readonly checkpoints: number;
  readonly keySpkiSha256: string | null;
  readonly firstBadSeq: number | null;
  readonly problem: string | null;
}

/** Auditability: can every use be tied to an identity, and is the record intact. */
export interface AuditabilitySection {
  readonly entries: number;
  readonly byOutcome: { readonly allowed: number; readonly denied: number; readonly failed: number };
  /** Entries whose actor is an identity (a SPIFFE ID or a local command), not `anonymous`. */
  readonly identifiedActor: Ratio;
  /**
   * Entries tied to an identity: an identified actor, or an allowed Enroll (its single-use join
   * token names the identity). The rest are refused anonymous calls.
   */
  readonly attributable: Ratio;
  /** Most frequent first. */
  readonly refusals: readonly RefusalCount[];
  readonly chain: ChainVerification;
  /** Window entries at or before the last good checkpoint (signed; verified with `--audit-key`). */
  readonly checkpointCoverage: Ratio;
  readonly lastCheckpoint: {
    readonly seq: number;
    readonly time: string;
    readonly ageMs: number;
    /** Entries after it (covered by the hash chain only). */
    readonly entriesAfter: number;
  } | null;
}

/** The whole report. */
export interface MetricsReport {
  readonly kind: 'credbroker.report';
  readonly version: typeof METRICS_REPORT_VERSION;
  readonly generatedAt: string;
  readonly window: { readonly from: string; readonly to: string; readonly asOf: string; readonly durationMs: number; readonly label: string };
  readonly sources: { readonly database: string; readonly policy: string; readonly policySha256: string; readonly trustDomain: string };
  readonly secretTtl: SecretTtlSection;
  readonly rotationMttr: RotationMttrSection;
  readonly rotationCoverage: RotationCoverageSection;
  readonly permissionGranularity: PermissionGranularitySection;
  readonly retrievalLatency: RetrievalLatencySection;
  readonly auditability: AuditabilitySection;
}
