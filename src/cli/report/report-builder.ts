/**
 * The computation behind `credbroker report`, apart from where the data comes from: feed it the
 * window's audit entries, the certificates issued in the window, the certificates live at its
 * end and the window's forced rotations (in any order, one at a time, so a long log never has
 * to fit in memory), then {@link ReportBuilder.build} the {@link MetricsReport}. Pure: time is
 * the `now` it is given, the policy the one it is given; tests drive it with fixtures.
 *
 * Where a figure comes from:
 * - secret TTL: certificate records (notAfter − issuedAt); IssueToken entries (expiresAt − entry
 *   time); CreateJoinToken entries (ttlSeconds). Caps from the current policy.
 * - rotation MTTR: rotation records and their targets (finishedAt − requestedAt), for the
 *   ForceRotate entries of the window.
 * - rotation coverage: certificates live at `asOf` and the window's Renew entries.
 * - permission granularity: the policy's identity entries, and the IssueToken entries against them.
 * - retrieval latency: `latencyMs` of the allowed Enroll, Renew and IssueToken entries.
 * - auditability: every entry of the window, and the audit verifier's result for the whole log.
 */
import { DEFAULT_RENEWAL_TIMING, renewAtMs } from '../../agent/index.js';
import { MINUTE_MS, SECOND_MS } from '../../core/index.js';
import type { AuditVerification } from '../../audit/index.js';
import { rotationProgress } from '../../server/index.js';
import type { Policy } from '../../policy/index.js';
import type { AuditEntry, CertificateProfileName, CertificateRecord, RotationRecord, RotationTargetRecord } from '../../store/index.js';
import {
  LATENCY_ACTIONS,
  METRICS_REPORT_VERSION,
  type GrantGranularity,
  type LatencyAction,
  type LifetimeSummary,
  type MetricsReport,
  type NotRenewedIdentity,
  type RefusalCount,
  type RotationSummary,
  type TokenUse,
} from './metrics-report.js';
import type { ReportWindow } from './report-window.js';
import { distributionOf, histogramOf, ratioOf } from './statistics.js';

/** What the builder needs of a certificate (the DER stays in the store). */
export type CertificateFacts = Pick<CertificateRecord, 'serial' | 'spiffeId' | 'profile' | 'notBefore' | 'notAfter' | 'issuedAt' | 'revokedAt'>;

/** Histogram edges of certificate lifetimes: 15m … 24h (the hard cap). */
export const CERTIFICATE_LIFETIME_EDGES_MS: readonly number[] = Object.freeze([15, 30, 60, 120, 240, 480, 720, 1440].map((m) => m * MINUTE_MS));
/** Histogram edges of token lifetimes: 1m … 1h (the hard cap). */
export const TOKEN_LIFETIME_EDGES_MS: readonly number[] = Object.freeze([1, 5, 10, 15, 30, 60].map((m) => m * MINUTE_MS));
/** Histogram edges of join token lifetimes: 5m … 1h (the hard cap). */
export const JOIN_TOKEN_LIFETIME_EDGES_MS: readonly number[] = Object.freeze([5, 15, 30, 60].map((m) => m * MINUTE_MS));

/** X.509 and JWT validity is in whole seconds: a lifetime this close to its cap is at the cap. */
const CAP_TOLERANCE_MS = SECOND_MS;
const PROFILES: readonly CertificateProfileName[] = ['service', 'operator', 'server'];
const ANONYMOUS = 'anonymous';

/** Options of a {@link ReportBuilder}. */
export interface ReportBuilderOptions {
  readonly window: ReportWindow;
  /** The report time (ages, pending and expired rotation targets). */
  readonly now: Date;
  /** The current policy: caps, grants. */
  readonly policy: Policy;
  /** Where the data came from, for the heading. */
  readonly sources: { readonly database: string; readonly policy: string };
}

/** What only the end of the collection knows. */
export interface ReportFinish {
  /** The audit verifier's result over the whole log. */
  readonly verification: AuditVerification;
  /** Unused, unexpired join tokens at `window.asOf`. */
  readonly outstandingJoinTokens: number;
}

/** Lifetimes of one kind of credential, with their caps. */
class LifetimeTally {
  readonly valuesMs: number[] = [];
  atCap = 0;
  known = 0;
  notInPolicy = 0;

  add(lifetimeMs: number, capMs: number | null): void {
    this.valuesMs.push(lifetimeMs);
    if (capMs === null) {
      this.notInPolicy++;
      return;
    }
    this.known++;
    if (lifetimeMs >= capMs - CAP_TOLERANCE_MS) this.atCap++;
  }

  summary(edgesMs: readonly number[]): LifetimeSummary {
    return {
      lifetimeMs: distributionOf(this.valuesMs),
      atCap: ratioOf(this.atCap, this.known),
      notInPolicy: this.notInPolicy,
      histogram: histogramOf(this.valuesMs, edgesMs),
    };
  }
}

interface TokenTally {
  tokens: number;
  readonly scopeCounts: number[];
  fewer: number;
  readonly scopes: Set<string>;
  readonly audiences: Set<string>;
}

/** Milliseconds rounded up to whole seconds. */
function ceilToSecond(ms: number): number {
  return Math.ceil(ms / SECOND_MS) * SECOND_MS;
}

function detailString(entry: AuditEntry, key: string): string | null {
  const value = entry.details[key];
  return typeof value === 'string' ? value : null;
}

function detailNumber(entry: AuditEntry, key: string): number | null {
  const value = entry.details[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function inWindow(time: Date, window: ReportWindow): boolean {
  const ms = time.getTime();
  return ms >= window.from.getTime() && ms < window.to.getTime();
}

/** Accumulates a window's data and builds the {@link MetricsReport}. */
export class ReportBuilder {
  readonly #options: ReportBuilderOptions;
  readonly #certificates = new LifetimeTally();
  readonly #byProfile = new Map<CertificateProfileName, LifetimeTally>();
  readonly #tokens = new LifetimeTally();
  #boundTokens = 0;
  readonly #joinTokens = new LifetimeTally();
  #joinTokensCreated = 0;
  #joinTokensWithoutTtl = 0;
  #enrollments = 0;
  readonly #latency = new Map<LatencyAction, { readonly valuesMs: number[]; without: number }>(LATENCY_ACTIONS.map((action) => [action, { valuesMs: [], without: 0 }]));
  readonly #renewed = new Set<string>();
  /** Per live identity, its newest live certificate. */
  readonly #live = new Map<string, CertificateFacts>();
  readonly #rotationIds: string[] = [];
  readonly #rotations: { readonly rotation: RotationRecord; readonly targets: readonly RotationTargetRecord[] }[] = [];
  readonly #tokenUse = new Map<string, TokenTally>();
  #entries = 0;
  readonly #outcomes = { allowed: 0, denied: 0, failed: 0 };
  #identified = 0;
  #attributable = 0;
  readonly #refusals = new Map<string, RefusalCount>();
  readonly #seqs: number[] = [];

  constructor(options: ReportBuilderOptions) {
    this.#options = options;
  }

  /** Rotation ids of the window's allowed ForceRotate entries, in the order seen (fetch their records). */
  get rotationIds(): readonly string[] {
    return this.#rotationIds;
  }

  /** One audit entry; entries outside the window are ignored. */
  addEntry(entry: AuditEntry): void {
    if (!inWindow(entry.time, this.#options.window)) return;
    this.#entries++;
    this.#seqs.push(entry.seq);
    this.#outcomes[entry.outcome]++;
    const identified = entry.actor !== ANONYMOUS && entry.actor !== '';
    if (identified) this.#identified++;
    if (identified || (entry.action === 'Enroll' && entry.outcome === 'allowed')) this.#attributable++;
    if (entry.outcome !== 'allowed') {
      const reason = entry.reason === '' ? '(none)' : entry.reason;
      const key = `${entry.outcome} ${reason}`;
      const known = this.#refusals.get(key);
      this.#refusals.set(key, { outcome: entry.outcome, reason, count: (known?.count ?? 0) + 1 });
      return;
    }
    if ((LATENCY_ACTIONS as readonly string[]).includes(entry.action)) {
      const tally = this.#latency.get(entry.action as LatencyAction);
      const latencyMs = detailNumber(entry, 'latencyMs');
      if (tally !== undefined) {
        if (latencyMs === null) tally.without++;
        else tally.valuesMs.push(latencyMs);
      }
    }
    switch (entry.action) {
      case 'Enroll':
        this.#enrollments++;
        break;
      case 'Renew':
        this.#renewed.add(entry.subject);
        break;
      case 'IssueToken':
        this.#addToken(entry);
        break;
      case 'CreateJoinToken':
        this.#addJoinToken(entry);
        break;
      case 'ForceRotate': {
        const rotationId = detailString(entry, 'rotationId');
        if (rotationId !== null && !this.#rotationIds.includes(rotationId)) this.#rotationIds.push(rotationId);
        break;
      }
      default:
        break;
    }
  }

  /** A certificate issued in the window (others are ignored). */
  addIssuedCertificate(certificate: CertificateFacts): void {
    if (!inWindow(certificate.issuedAt, this.#options.window)) return;
    const lifetimeMs = ceilToSecond(certificate.notAfter.getTime() - certificate.issuedAt.getTime());
    const capMs = this.#options.policy.lookup(certificate.spiffeId)?.certificates.maxTtlMs ?? null;
    this.#certificates.add(lifetimeMs, capMs);
    let tally = this.#byProfile.get(certificate.profile);
    if (tally === undefined) {
      tally = new LifetimeTally();
      this.#byProfile.set(certificate.profile, tally);
    }
    tally.add(lifetimeMs, capMs);
  }

  /**
   * A certificate live at `window.asOf`: valid then (notBefore ≤ asOf ≤ notAfter, RFC 5280
   * §4.1.2.5) and not revoked at or before it; others are ignored, and so are server
   * certificates (the broker's own, not a workload's).
   */
  addLiveCertificate(certificate: CertificateFacts): void {
    const asOfMs = this.#options.window.asOf.getTime();
    const valid = certificate.notBefore.getTime() <= asOfMs && asOfMs <= certificate.notAfter.getTime();
    const revoked = certificate.revokedAt !== null && certificate.revokedAt.getTime() <= asOfMs;
    if (certificate.profile === 'server' || !valid || revoked) return;
    const known = this.#live.get(certificate.spiffeId);
    if (known === undefined || known.issuedAt.getTime() < certificate.issuedAt.getTime()) this.#live.set(certificate.spiffeId, certificate);
  }

  /** A forced rotation with every target; one requested outside the window is ignored. */
  addRotation(rotation: RotationRecord, targets: readonly RotationTargetRecord[]): void {
    if (!inWindow(rotation.requestedAt, this.#options.window)) return;
    this.#rotations.push({ rotation, targets });
  }

  /** The report. */
  build(finish: ReportFinish): MetricsReport {
    const { window, now, policy, sources } = this.#options;
    return {
      kind: 'credbroker.report',
      version: METRICS_REPORT_VERSION,
      generatedAt: now.toISOString(),
      window: { from: window.from.toISOString(), to: window.to.toISOString(), asOf: window.asOf.toISOString(), durationMs: window.to.getTime() - window.from.getTime(), label: window.label },
      sources: { database: sources.database, policy: sources.policy, policySha256: policy.sha256, trustDomain: policy.trustDomain },
      secretTtl: {
        certificates: {
          all: this.#certificates.summary(CERTIFICATE_LIFETIME_EDGES_MS),
          byProfile: PROFILES.flatMap((profile) => {
            const tally = this.#byProfile.get(profile);
            return tally === undefined ? [] : [{ profile, ...tally.summary(CERTIFICATE_LIFETIME_EDGES_MS) }];
          }),
        },
        tokens: { ...this.#tokens.summary(TOKEN_LIFETIME_EDGES_MS), bound: ratioOf(this.#boundTokens, this.#tokens.valuesMs.length) },
        joinTokens: {
          ...this.#joinTokens.summary(JOIN_TOKEN_LIFETIME_EDGES_MS),
          created: this.#joinTokensCreated,
          withoutTtl: this.#joinTokensWithoutTtl,
          redeemed: this.#enrollments,
          outstandingAsOf: finish.outstandingJoinTokens,
        },
      },
      rotationMttr: this.#rotationMttr(now),
      rotationCoverage: this.#rotationCoverage(window.asOf),
      permissionGranularity: this.#granularity(policy),
      retrievalLatency: {
        actions: LATENCY_ACTIONS.map((action) => {
          const tally = this.#latency.get(action) ?? { valuesMs: [], without: 0 };
          return { action, latencyMs: distributionOf(tally.valuesMs), withoutLatency: tally.without };
        }),
      },
      auditability: this.#auditability(finish.verification, now),
    };
  }

  #addToken(entry: AuditEntry): void {
    const expiresAt = detailString(entry, 'expiresAt');
    const expiresMs = expiresAt === null ? Number.NaN : Date.parse(expiresAt);
    const grant = this.#options.policy.lookup(entry.actor)?.tokens ?? null;
    if (Number.isFinite(expiresMs)) {
      this.#tokens.add(ceilToSecond(Math.max(0, expiresMs - entry.time.getTime())), grant?.maxTtlMs ?? null);
      if (entry.details.bound === true) this.#boundTokens++;
    }
    const scopes = (detailString(entry, 'scopes') ?? '').split(' ').filter((scope) => scope !== '');
    let tally = this.#tokenUse.get(entry.actor);
    if (tally === undefined) {
      tally = { tokens: 0, scopeCounts: [], fewer: 0, scopes: new Set(), audiences: new Set() };
      this.#tokenUse.set(entry.actor, tally);
    }
    tally.tokens++;
    tally.scopeCounts.push(scopes.length);
    if (grant !== null && scopes.length < grant.scopes.length) tally.fewer++;
    for (const scope of scopes) tally.scopes.add(scope);
    tally.audiences.add(entry.subject);
  }

  #addJoinToken(entry: AuditEntry): void {
    this.#joinTokensCreated++;
    const ttlSeconds = detailNumber(entry, 'ttlSeconds');
    if (ttlSeconds === null || ttlSeconds <= 0) {
      this.#joinTokensWithoutTtl++;
      return;
    }
    this.#joinTokens.add(ttlSeconds * SECOND_MS, this.#options.policy.joinTokens.maxTtlMs);
  }

  #rotationMttr(now: Date): MetricsReport['rotationMttr'] {
    const rotations = [...this.#rotations].sort((a, b) => a.rotation.requestedAt.getTime() - b.rotation.requestedAt.getTime() || a.rotation.id.localeCompare(b.rotation.id));
    const summaries = rotations.map(({ rotation, targets }) => rotationSummary(rotation, targets, now));
    const allMttr = rotations.flatMap(({ rotation, targets }) => rotationProgress(rotation, targets, now).mttrMs);
    const sum = (field: 'targeted' | 'connected' | 'rotated' | 'pending' | 'expired' | 'revoked'): number => summaries.reduce((total, s) => total + s[field], 0);
    const ages = summaries.map((s) => s.oldestPendingAgeMs).filter((age): age is number => age !== null);
    return {
      rotations: summaries,
      overall: {
        rotations: summaries.length,
        targeted: sum('targeted'),
        connected: sum('connected'),
        rotated: sum('rotated'),
        pending: sum('pending'),
        expired: sum('expired'),
        revoked: sum('revoked'),
        mttrMs: distributionOf(allMttr),
        oldestPendingAgeMs: ages.length === 0 ? null : Math.max(...ages),
      },
    };
  }

  #rotationCoverage(asOf: Date): MetricsReport['rotationCoverage'] {
    const live = [...this.#live.values()].sort((a, b) => a.spiffeId.localeCompare(b.spiffeId));
    const renewed = live.filter((certificate) => this.#renewed.has(certificate.spiffeId));
    const notRenewed: NotRenewedIdentity[] = live
      .filter((certificate) => !this.#renewed.has(certificate.spiffeId))
      .map((certificate) => ({
        spiffeId: certificate.spiffeId,
        profile: certificate.profile,
        notYetDue: renewAtMs({ notBeforeMs: certificate.notBefore.getTime(), notAfterMs: certificate.notAfter.getTime() }, DEFAULT_RENEWAL_TIMING, 0) > asOf.getTime(),
      }));
    const targeted = this.#rotations.reduce((total, r) => total + r.targets.length, 0);
    const rotated = this.#rotations.reduce((total, r) => total + r.targets.filter((t) => t.status === 'rotated').length, 0);
    return {
      automatic: ratioOf(renewed.length, live.length),
      byProfile: PROFILES.flatMap((profile) => {
        const of = live.filter((c) => c.profile === profile).length;
        return of === 0 ? [] : [{ profile, identities: ratioOf(renewed.filter((c) => c.profile === profile).length, of) }];
      }),
      notRenewed,
      forced: ratioOf(rotated, targeted),
    };
  }

  #granularity(policy: Policy): MetricsReport['permissionGranularity'] {
    const byIdentity: GrantGranularity[] = policy.identities().map((identity) => {
      const audiences = identity.tokens?.audiences.length ?? 0;
      const scopes = identity.tokens?.scopes.length ?? 0;
      return {
        id: identity.id,
        role: identity.role,
        match: !identity.isPattern ? 'exact' : identity.id.endsWith('/**') ? 'any-depth' : 'pattern',
        audiences,
        scopes,
        pairs: audiences * scopes,
        dnsNames: identity.dnsNames.length,
        wildcardDnsNames: identity.dnsNames.filter((name) => name.startsWith('*.')).length,
        ipAddresses: identity.ipAddresses.length,
        resources: identity.resources.length,
        bearer: identity.tokens === null ? null : !identity.tokens.requireBinding,
      };
    });
    const uses: TokenUse[] = [...this.#tokenUse.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([spiffeId, tally]) => {
        const identity = policy.lookup(spiffeId);
        const grant = identity?.tokens ?? null;
        const grantedScopes = grant?.scopes ?? [];
        const grantedAudiences = grant?.audiences ?? [];
        return {
          spiffeId,
          policyId: identity?.id ?? null,
          tokens: tally.tokens,
          scopesPerToken: distributionOf(tally.scopeCounts),
          fewerThanGranted: ratioOf(tally.fewer, grant === null ? 0 : tally.tokens),
          scopesUsed: ratioOf(grantedScopes.filter((scope) => tally.scopes.has(scope)).length, grantedScopes.length),
          audiencesUsed: ratioOf(grantedAudiences.filter((audience) => tally.audiences.has(audience)).length, grantedAudiences.length),
          unusedScopes: grantedScopes.filter((scope) => !tally.scopes.has(scope)),
        };
      });
    const withTokens = byIdentity.filter((g) => g.bearer !== null);
    return {
      policy: {
        identities: byIdentity.length,
        exact: byIdentity.filter((g) => g.match === 'exact').length,
        patterns: byIdentity.filter((g) => g.match !== 'exact').length,
        anyDepthPatterns: byIdentity.filter((g) => g.match === 'any-depth').length,
        withTokens: withTokens.length,
        pairsPerGrant: distributionOf(withTokens.map((g) => g.pairs)),
        wildcardDnsNames: byIdentity.reduce((total, g) => total + g.wildcardDnsNames, 0),
        bearerGrants: withTokens.filter((g) => g.bearer === true).length,
        byIdentity,
      },
      use: {
        tokens: uses.reduce((total, u) => total + u.tokens, 0),
        scopesPerToken: distributionOf([...this.#tokenUse.values()].flatMap((tally) => tally.scopeCounts)),
        fewerThanGranted: ratioOf(
          uses.reduce((total, u) => total + u.fewerThanGranted.count, 0),
          uses.reduce((total, u) => total + u.fewerThanGranted.of, 0),
        ),
        byIdentity: uses,
      },
    };
  }

  #auditability(verification: AuditVerification, now: Date): MetricsReport['auditability'] {
    const checkpointSeq = verification.lastCheckpointSeq;
    const checkpointTime = verification.lastCheckpointTime;
    const covered = checkpointSeq === undefined ? 0 : this.#seqs.filter((seq) => seq <= checkpointSeq).length;
    return {
      entries: this.#entries,
      byOutcome: { ...this.#outcomes },
      identifiedActor: ratioOf(this.#identified, this.#entries),
      attributable: ratioOf(this.#attributable, this.#entries),
      refusals: [...this.#refusals.values()].sort((a, b) => b.count - a.count || a.outcome.localeCompare(b.outcome) || a.reason.localeCompare(b.reason)),
      chain: {
        ok: verification.ok,
        entriesVerified: verification.entries,
        headSeq: verification.headSeq,
        signaturesChecked: verification.signaturesChecked,
        checkpoints: verification.checkpoints,
        keySpkiSha256: verification.keySpkiSha256 ?? null,
        firstBadSeq: verification.firstBadSeq ?? null,
        problem: verification.reason ?? null,
      },
      checkpointCoverage: ratioOf(covered, this.#entries),
      lastCheckpoint:
        checkpointSeq === undefined || checkpointTime === undefined
          ? null
          : {
              seq: checkpointSeq,
              time: checkpointTime.toISOString(),
              ageMs: Math.max(0, now.getTime() - checkpointTime.getTime()),
              entriesAfter: Math.max(0, verification.headSeq - checkpointSeq),
            },
    };
  }
}

/** A rotation's counts and MTTR at `now`, as GetRotation reports them. */
function rotationSummary(rotation: RotationRecord, targets: readonly RotationTargetRecord[], now: Date): RotationSummary {
  const { mttrMs, ...counts } = rotationProgress(rotation, targets, now);
  return {
    rotationId: rotation.id,
    selector: rotation.selector,
    reason: rotation.reason,
    requestedBy: rotation.requestedBy,
    requestedAt: rotation.requestedAt.toISOString(),
    ...counts,
    mttrMs: distributionOf(mttrMs),
    oldestPendingAgeMs: counts.pending === 0 ? null : Math.max(0, now.getTime() - rotation.requestedAt.getTime()),
    complete: counts.pending === 0,
  };
}
