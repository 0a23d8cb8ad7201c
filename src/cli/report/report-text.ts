/**
 * `credbroker report` as text: one numbered section per measure, aligned tables with units, and
 * a plain sentence wherever the window holds no data for a section.
 */
import type { Distribution } from './statistics.js';
import type { LifetimeSummary, MetricsReport } from './metrics-report.js';
import { textTable, type ColumnAlign } from './text-table.js';
import { NO_VALUE, formatMs, formatNumber, formatRatio, formatShare, plural } from './units.js';

const short = (hex: string): string => `${hex.slice(0, 16)}…`;

function lifetimeRow(label: string, summary: LifetimeSummary): string[] {
  const d = summary.lifetimeMs;
  return [label, String(d.count), formatMs(d.p50), formatMs(d.p90), formatMs(d.max), summary.atCap.share === null ? NO_VALUE : formatRatio(summary.atCap)];
}

function secretTtl(report: MetricsReport): string[] {
  const { certificates, tokens, joinTokens } = report.secretTtl;
  const lines = ['1. Secret TTL: lifetimes of the credentials issued in the window'];
  if (certificates.all.lifetimeMs.count === 0 && tokens.lifetimeMs.count === 0 && joinTokens.created === 0) {
    lines.push('  no certificates, signed tokens or join tokens were issued in this window');
    return lines;
  }
  const rows = [
    lifetimeRow('certificates', certificates.all),
    ...certificates.byProfile.map((p) => lifetimeRow(`  ${p.profile}`, p)),
    lifetimeRow('signed tokens', tokens),
    lifetimeRow('join tokens', joinTokens),
  ];
  lines.push(...textTable(['credential', 'issued', 'p50', 'p90', 'max', 'at policy cap'], rows, ['left', 'right', 'right', 'right', 'right', 'right']));
  if (tokens.lifetimeMs.count > 0) lines.push(`  signed tokens bound to the caller's certificate: ${formatRatio(tokens.bound)}`);
  const notInPolicy = certificates.all.notInPolicy + tokens.notInPolicy;
  if (notInPolicy > 0) lines.push(`  ${plural(notInPolicy, 'credential')} of identities the current policy no longer knows (no cap to compare with)`);
  const withoutTtl = joinTokens.withoutTtl > 0 ? ` (${joinTokens.withoutTtl} without a recorded TTL)` : '';
  lines.push(`  join tokens: ${joinTokens.created} created${withoutTtl}, ${joinTokens.redeemed} redeemed (enrollments), ${joinTokens.outstandingAsOf} outstanding at ${report.window.asOf}`);
  return lines;
}

function mttrCells(d: Distribution): string[] {
  return [formatMs(d.p50), formatMs(d.p99), formatMs(d.max)];
}

function rotationMttr(report: MetricsReport): string[] {
  const { rotations, overall } = report.rotationMttr;
  const lines = ['2. Rotation MTTR: forced rotations requested in the window (request → new certificate), status now'];
  if (rotations.length === 0) {
    lines.push('  no forced rotation was requested in this window');
    return lines;
  }
  const counts = (r: { targeted: number; connected: number; rotated: number; pending: number; expired: number; revoked: number }): string[] =>
    [r.targeted, r.connected, r.rotated, r.pending, r.expired, r.revoked].map(String);
  const rows = [
    ...rotations.map((r) => [r.rotationId, r.selector, r.reason, ...counts(r), ...mttrCells(r.mttrMs)]),
    [`all (${plural(overall.rotations, 'rotation')})`, '', '', ...counts(overall), ...mttrCells(overall.mttrMs)],
  ];
  const align: ColumnAlign[] = ['left', 'left', 'left', ...new Array<ColumnAlign>(9).fill('right')];
  lines.push(...textTable(['rotation', 'selector', 'reason', 'targeted', 'connected', 'rotated', 'pending', 'expired', 'revoked', 'MTTR p50', 'p99', 'max'], rows, align));
  if (overall.oldestPendingAgeMs !== null) lines.push(`  ${plural(overall.pending, 'target')} still pending, the oldest for ${formatMs(overall.oldestPendingAgeMs)} (their MTTR will be at least that)`);
  return lines;
}

function rotationCoverage(report: MetricsReport): string[] {
  const { automatic, byProfile, notRenewed, forced } = report.rotationCoverage;
  const lines = ['3. Rotation coverage: identities with a live certificate that renewed automatically (Renew) in the window'];
  if (automatic.of === 0) {
    lines.push(`  no identity has a live certificate at ${report.window.asOf}`);
  } else {
    lines.push(`  all identities: ${formatRatio(automatic)}`);
    lines.push(...textTable(['profile', 'renewed'], byProfile.map((p) => [p.profile, formatRatio(p.identities)]), ['left', 'right'], '    '));
    const shown = notRenewed.slice(0, 20);
    if (shown.length > 0) {
      lines.push('  not renewed in the window:');
      for (const identity of shown) lines.push(`    ${identity.spiffeId} (${identity.profile})${identity.notYetDue ? ': not yet due (its certificate is not at 2/3 of its lifetime)' : ''}`);
      if (notRenewed.length > shown.length) lines.push(`    … and ${notRenewed.length - shown.length} more (see --json)`);
    }
  }
  lines.push(forced.of === 0 ? '  forced rotations: none targeted a certificate in this window' : `  forced rotations: ${formatRatio(forced)} of the targeted certificates replaced by a renewal`);
  return lines;
}

function granularity(report: MetricsReport): string[] {
  const { policy, use } = report.permissionGranularity;
  const lines = ['4. Permission granularity'];
  lines.push(
    `  policy: ${plural(policy.identities, 'identity', 'identities')} (${policy.exact} exact IDs, ${policy.patterns} patterns, ${policy.anyDepthPatterns} of them any-depth /**), ` +
      `${policy.withTokens} with tokens; audience × scope pairs per grant p50 ${formatNumber(policy.pairsPerGrant.p50)}, max ${formatNumber(policy.pairsPerGrant.max)}; ` +
      `${plural(policy.wildcardDnsNames, 'wildcard DNS name')}; ${plural(policy.bearerGrants, 'bearer-token grant')}`,
  );
  if (policy.identities > 0) {
    const rows = policy.byIdentity.map((g) => [
      g.id,
      g.role,
      g.match,
      String(g.audiences),
      String(g.scopes),
      String(g.pairs),
      String(g.dnsNames),
      String(g.wildcardDnsNames),
      String(g.ipAddresses),
      String(g.resources),
      g.bearer === null ? NO_VALUE : g.bearer ? 'yes' : 'no',
    ]);
    lines.push(...textTable(['identity', 'role', 'match', 'audiences', 'scopes', 'pairs', 'dns', 'wildcard dns', 'ip', 'resources', 'bearer'], rows, ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left']));
  }
  if (use.tokens === 0) {
    lines.push('  in use: no signed tokens were issued in this window');
    return lines;
  }
  lines.push(
    `  in use: ${plural(use.tokens, 'token')}, scopes per token p50 ${formatNumber(use.scopesPerToken.p50)}, max ${formatNumber(use.scopesPerToken.max)}; ` +
      `tokens asking fewer scopes than granted: ${formatRatio(use.fewerThanGranted)}`,
  );
  const rows = use.byIdentity.map((u) => [
    u.spiffeId,
    String(u.tokens),
    formatNumber(u.scopesPerToken.mean),
    formatShare(u.fewerThanGranted),
    u.policyId === null ? 'not in policy' : `${u.scopesUsed.count}/${u.scopesUsed.of}`,
    u.policyId === null ? '' : `${u.audiencesUsed.count}/${u.audiencesUsed.of}`,
    u.unusedScopes.join(' '),
  ]);
  lines.push(...textTable(['identity', 'tokens', 'scopes/token', 'fewer than granted', 'scopes used', 'audiences used', 'granted, never asked'], rows, ['left', 'right', 'right', 'right', 'right', 'right', 'left']));
  return lines;
}

function latency(report: MetricsReport): string[] {
  const { actions } = report.retrievalLatency;
  const lines = ['5. Retrieval latency: receipt of the call → decision recorded (allowed calls)'];
  if (actions.every((a) => a.latencyMs.count === 0 && a.withoutLatency === 0)) {
    lines.push('  no Enroll, Renew or IssueToken was allowed in this window');
    return lines;
  }
  const rows = actions.map((a) => [a.action, String(a.latencyMs.count), formatMs(a.latencyMs.p50), formatMs(a.latencyMs.p95), formatMs(a.latencyMs.p99), formatMs(a.latencyMs.max)]);
  lines.push(...textTable(['action', 'calls', 'p50', 'p95', 'p99', 'max'], rows, ['left', 'right', 'right', 'right', 'right', 'right']));
  const without = actions.reduce((total, a) => total + a.withoutLatency, 0);
  if (without > 0) lines.push(`  ${plural(without, 'call')} without a recorded latency (audited by a broker that did not measure it) left out`);
  return lines;
}

function auditability(report: MetricsReport): string[] {
  const a = report.auditability;
  const lines = ['6. Auditability'];
  if (a.entries === 0) {
    lines.push('  no audit entries in this window');
  } else {
    lines.push(`  entries in the window: ${a.entries} (${a.byOutcome.allowed} allowed, ${a.byOutcome.denied} denied, ${a.byOutcome.failed} failed)`);
    lines.push(`  with an identified actor: ${formatRatio(a.identifiedActor)}; attributable to an identity: ${formatRatio(a.attributable)}`);
    if (a.refusals.length === 0) lines.push('  refusals: none');
    else lines.push('  refusals by reason:', ...textTable(['outcome', 'reason', 'count'], a.refusals.map((r) => [r.outcome, r.reason, String(r.count)]), ['left', 'left', 'right'], '    '));
  }
  const chain = a.chain;
  lines.push(
    chain.ok
      ? `  hash chain of the whole log: ok, ${plural(chain.entriesVerified, 'entry', 'entries')} verified, ${plural(chain.checkpoints, 'checkpoint')}`
      : `  hash chain of the whole log: INVALID at entry ${chain.firstBadSeq ?? '?'}: ${chain.problem ?? 'unknown problem'}`,
  );
  lines.push(
    chain.signaturesChecked
      ? `  checkpoint signatures: verified with the audit key (spki sha256 ${short(chain.keySpkiSha256 ?? '')})`
      : '  checkpoint signatures: NOT checked (pass --audit-key <pem> to check them)',
  );
  if (a.lastCheckpoint === null) {
    lines.push('  last checkpoint: none yet (entries are covered by the hash chain only)');
  } else {
    lines.push(`  last checkpoint: entry ${a.lastCheckpoint.seq} at ${a.lastCheckpoint.time}, ${formatMs(a.lastCheckpoint.ageMs)} ago; ${plural(a.lastCheckpoint.entriesAfter, 'entry', 'entries')} after it`);
  }
  if (a.entries > 0) lines.push(`  window entries covered by a signed checkpoint: ${formatRatio(a.checkpointCoverage)}`);
  return lines;
}

/** The report as lines of text. */
export function reportText(report: MetricsReport): string[] {
  return [
    `credbroker report: ${report.window.label} (${report.window.from} … ${report.window.to}), generated ${report.generatedAt}`,
    `  database ${report.sources.database}`,
    `  policy ${report.sources.policy} (sha256 ${short(report.sources.policySha256)}, trust domain ${report.sources.trustDomain})`,
    '',
    ...secretTtl(report),
    '',
    ...rotationMttr(report),
    '',
    ...rotationCoverage(report),
    '',
    ...granularity(report),
    '',
    ...latency(report),
    '',
    ...auditability(report),
  ];
}
