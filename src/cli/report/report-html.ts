/**
 * `credbroker report --html`: the same report as one self-contained page for people who would
 * rather look than read. Inline CSS, inline SVG charts drawn by svg-chart.ts, no script, font,
 * image or style sheet from anywhere else (the page works offline and leaks no request); the
 * report's JSON rides along in a non-executed `application/json` block for anyone who wants the
 * figures.
 */
import type { LifetimeSummary, MetricsReport } from './metrics-report.js';
import type { Histogram, Ratio } from './statistics.js';
import { escapeXml, horizontalBarGroups, stackedBar, verticalBars } from './svg-chart.js';
import { NO_VALUE, formatMs, formatNumber, formatRatio, formatShare, plural } from './units.js';

const STYLE = `
:root { color-scheme: light; --ink: #1d2430; --muted: #5d6675; --line: #d8dde5; --s0: #3b6ea8; --s1: #e09a2d; --s2: #c0504d; --s3: #8a8f98; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 8px; padding-top: 12px; border-top: 1px solid var(--line); }
h3 { font-size: 14px; margin: 16px 0 6px; color: var(--muted); }
p { margin: 6px 0; }
.muted { color: var(--muted); fill: var(--muted); }
.empty { color: var(--muted); font-style: italic; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 150px; }
.card .value { font-size: 20px; font-weight: 600; }
.card .label { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { padding: 3px 10px 3px 0; text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 20px; }
.chart { display: block; margin: 4px 0 12px; overflow: visible; }
.chart text { fill: var(--ink); font-family: inherit; }
.chart .muted { fill: var(--muted); }
.chart .axis { stroke: var(--line); }
.chart .track { fill: #eef1f5; }
.s0 { fill: var(--s0); } .s1 { fill: var(--s1); } .s2 { fill: var(--s2); } .s3 { fill: var(--s3); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; }
.ok { background: #dcefdc; color: #1f5f1f; } .bad { background: #f6d5d4; color: #8a1f1b; } .warn { background: #fbebcc; color: #7a4b00; }
@media print { h2 { break-before: auto; } .chart { break-inside: avoid; } }
`;

type Cell = string | { readonly html: string } | { readonly num: string };

function cell(value: Cell, tag: 'td' | 'th'): string {
  if (typeof value === 'string') return `<${tag}>${escapeXml(value)}</${tag}>`;
  if ('num' in value) return `<${tag} class="num">${escapeXml(value.num)}</${tag}>`;
  return `<${tag}>${value.html}</${tag}>`;
}

function table(headers: readonly Cell[], rows: readonly (readonly Cell[])[]): string {
  return `<table><thead><tr>${headers.map((h) => cell(h, 'th')).join('')}</tr></thead><tbody>${rows.map((row) => `<tr>${row.map((c) => cell(c, 'td')).join('')}</tr>`).join('')}</tbody></table>`;
}

const num = (text: string): Cell => ({ num: text });

function card(value: string, label: string): string {
  return `<div class="card"><div class="value">${escapeXml(value)}</div><div class="label">${escapeXml(label)}</div></div>`;
}

function empty(text: string): string {
  return `<p class="empty">${escapeXml(text)}</p>`;
}

function histogramBars(histogram: Histogram): { label: string; value: number }[] {
  return histogram.map((bucket, index) => {
    const previous = histogram[index - 1]?.upTo;
    const label = bucket.upTo === null ? `> ${formatMs(previous ?? 0)}` : `≤ ${formatMs(bucket.upTo)}`;
    return { label, value: bucket.count };
  });
}

function lifetimeCells(label: string, summary: LifetimeSummary): Cell[] {
  const d = summary.lifetimeMs;
  return [label, num(String(d.count)), num(formatMs(d.p50)), num(formatMs(d.p90)), num(formatMs(d.max)), num(summary.atCap.share === null ? NO_VALUE : formatRatio(summary.atCap))];
}

function ratioBar(title: string, ratio: Ratio, yes: string, no: string): string {
  return stackedBar(title, [
    { label: yes, value: ratio.count },
    { label: no, value: ratio.of - ratio.count },
  ]);
}

function secretTtl(report: MetricsReport): string {
  const { certificates, tokens, joinTokens } = report.secretTtl;
  const parts = ['<h2 id="secret-ttl">1. Secret TTL</h2><p class="muted">Lifetimes of the credentials issued in the window, against the cap policy sets for each identity.</p>'];
  if (certificates.all.lifetimeMs.count === 0 && tokens.lifetimeMs.count === 0 && joinTokens.created === 0) {
    parts.push(empty('No certificates, signed tokens or join tokens were issued in this window.'));
    return parts.join('');
  }
  parts.push(
    `<div class="cards">${card(formatMs(certificates.all.lifetimeMs.p50), 'certificate lifetime p50')}${card(formatMs(tokens.lifetimeMs.p50), 'token lifetime p50')}${card(formatShare(certificates.all.atCap), 'certificates at the policy cap')}${card(formatShare(tokens.bound), 'tokens bound to a certificate')}</div>`,
  );
  parts.push(
    table(
      ['credential', num('issued'), num('p50'), num('p90'), num('max'), num('at policy cap')],
      [lifetimeCells('certificates', certificates.all), ...certificates.byProfile.map((p) => lifetimeCells(`— ${p.profile}`, p)), lifetimeCells('signed tokens', tokens), lifetimeCells('join tokens', joinTokens)],
    ),
  );
  parts.push(`<p>Join tokens: ${joinTokens.created} created${joinTokens.withoutTtl > 0 ? ` (${joinTokens.withoutTtl} without a recorded TTL)` : ''}, ${joinTokens.redeemed} redeemed, ${joinTokens.outstandingAsOf} outstanding at ${escapeXml(report.window.asOf)}.</p>`);
  const charts: string[] = [];
  if (certificates.all.lifetimeMs.count > 0) charts.push(`<div><h3>Certificate lifetimes</h3>${verticalBars('certificate lifetimes', histogramBars(certificates.all.histogram))}</div>`);
  if (tokens.lifetimeMs.count > 0) charts.push(`<div><h3>Token lifetimes</h3>${verticalBars('token lifetimes', histogramBars(tokens.histogram), { width: 360 })}</div>`);
  if (joinTokens.lifetimeMs.count > 0) charts.push(`<div><h3>Join token lifetimes</h3>${verticalBars('join token lifetimes', histogramBars(joinTokens.histogram), { width: 260 })}</div>`);
  parts.push(`<div class="charts">${charts.join('')}</div>`);
  return parts.join('');
}

function rotationMttr(report: MetricsReport): string {
  const { rotations, overall } = report.rotationMttr;
  const parts = ['<h2 id="rotation-mttr">2. Rotation MTTR</h2><p class="muted">Forced rotations requested in the window: time from the request until each target\'s new certificate was issued; status as of the report.</p>'];
  if (rotations.length === 0) {
    parts.push(empty('No forced rotation was requested in this window.'));
    return parts.join('');
  }
  parts.push(`<div class="cards">${card(formatMs(overall.mttrMs.p50), 'MTTR p50')}${card(formatMs(overall.mttrMs.p99), 'MTTR p99')}${card(formatMs(overall.mttrMs.max), 'MTTR max')}${card(`${overall.rotated}/${overall.targeted}`, 'targets rotated')}</div>`);
  parts.push(
    table(
      ['rotation', 'selector', 'reason', 'requested', num('targeted'), num('connected'), num('rotated'), num('pending'), num('expired'), num('revoked'), num('MTTR p50'), num('p99'), num('max')],
      rotations.map((r) => [
        { html: `<code>${escapeXml(r.rotationId)}</code>` },
        r.selector,
        r.reason,
        r.requestedAt,
        num(String(r.targeted)),
        num(String(r.connected)),
        num(String(r.rotated)),
        num(String(r.pending)),
        num(String(r.expired)),
        num(String(r.revoked)),
        num(formatMs(r.mttrMs.p50)),
        num(formatMs(r.mttrMs.p99)),
        num(formatMs(r.mttrMs.max)),
      ]),
    ),
  );
  const groups = rotations
    .filter((r) => r.mttrMs.count > 0)
    .map((r) => ({
      label: `${r.rotationId.slice(0, 12)}…`,
      bars: [
        { label: 'p50', value: r.mttrMs.p50 ?? 0, valueLabel: formatMs(r.mttrMs.p50) },
        { label: 'p99', value: r.mttrMs.p99 ?? 0, valueLabel: formatMs(r.mttrMs.p99) },
        { label: 'max', value: r.mttrMs.max ?? 0, valueLabel: formatMs(r.mttrMs.max) },
      ],
    }));
  if (groups.length > 0) parts.push(`<h3>MTTR per rotation</h3>${horizontalBarGroups('MTTR per rotation', groups)}`);
  parts.push(
    `<h3>Targets</h3>${stackedBar('rotation targets', [
      { label: 'rotated', value: overall.rotated },
      { label: 'pending', value: overall.pending },
      { label: 'expired', value: overall.expired },
      { label: 'revoked', value: overall.revoked },
    ])}`,
  );
  if (overall.oldestPendingAgeMs !== null) parts.push(`<p>${plural(overall.pending, 'target')} still pending, the oldest for ${escapeXml(formatMs(overall.oldestPendingAgeMs))}.</p>`);
  return parts.join('');
}

function rotationCoverage(report: MetricsReport): string {
  const { automatic, byProfile, notRenewed, forced } = report.rotationCoverage;
  const parts = ['<h2 id="rotation-coverage">3. Rotation coverage</h2><p class="muted">Identities with a live certificate that renewed automatically (Renew) in the window.</p>'];
  if (automatic.of === 0) {
    parts.push(empty(`No identity has a live certificate at ${report.window.asOf}.`));
  } else {
    parts.push(`<div class="cards">${card(formatShare(automatic), `renewed automatically (${automatic.count}/${automatic.of})`)}${card(formatShare(forced), 'forced rotation targets replaced')}</div>`);
    parts.push(ratioBar('identities renewed automatically', automatic, 'renewed', 'not renewed'));
    parts.push(table(['profile', num('renewed')], byProfile.map((p) => [p.profile, num(formatRatio(p.identities))])));
    if (notRenewed.length > 0) {
      parts.push(table(['not renewed in the window', 'profile', 'note'], notRenewed.map((n) => [n.spiffeId, n.profile, n.notYetDue ? 'not yet due (certificate before 2/3 of its lifetime)' : ''])));
    }
  }
  if (forced.of === 0) parts.push(empty('No forced rotation targeted a certificate in this window.'));
  else parts.push(`<h3>Forced rotations</h3>${ratioBar('forced rotation targets', forced, 'rotated', 'not rotated')}`);
  return parts.join('');
}

function granularity(report: MetricsReport): string {
  const { policy, use } = report.permissionGranularity;
  const parts = [
    '<h2 id="permission-granularity">4. Permission granularity</h2>',
    `<p>Policy: ${plural(policy.identities, 'identity', 'identities')} (${policy.exact} exact, ${policy.patterns} patterns, ${policy.anyDepthPatterns} any-depth), ${policy.withTokens} with tokens; audience × scope pairs per grant p50 ${formatNumber(policy.pairsPerGrant.p50)}, max ${formatNumber(policy.pairsPerGrant.max)}; ${plural(policy.wildcardDnsNames, 'wildcard DNS name')}; ${plural(policy.bearerGrants, 'bearer-token grant')}.</p>`,
  ];
  if (policy.identities > 0) {
    parts.push(
      table(
        ['identity', 'role', 'match', num('audiences'), num('scopes'), num('pairs'), num('dns'), num('wildcard dns'), num('ip'), num('resources'), 'bearer'],
        policy.byIdentity.map((g) => [g.id, g.role, g.match, num(String(g.audiences)), num(String(g.scopes)), num(String(g.pairs)), num(String(g.dnsNames)), num(String(g.wildcardDnsNames)), num(String(g.ipAddresses)), num(String(g.resources)), g.bearer === null ? NO_VALUE : g.bearer ? 'yes' : 'no']),
      ),
    );
    const withTokens = policy.byIdentity.filter((g) => g.bearer !== null);
    if (withTokens.length > 0) {
      parts.push(`<h3>Audience × scope pairs per grant</h3>${horizontalBarGroups('audience × scope pairs per grant', withTokens.map((g) => ({ label: g.id.replace(/^spiffe:\/\/[^/]+/, ''), bars: [{ label: 'pairs', value: g.pairs }] })), { labelWidth: 240 })}`);
    }
  }
  if (use.tokens === 0) {
    parts.push(empty('No signed tokens were issued in this window.'));
    return parts.join('');
  }
  parts.push(`<p>In use: ${plural(use.tokens, 'token')}, scopes per token p50 ${formatNumber(use.scopesPerToken.p50)}, max ${formatNumber(use.scopesPerToken.max)}; tokens asking fewer scopes than granted: ${escapeXml(formatRatio(use.fewerThanGranted))}.</p>`);
  parts.push(
    table(
      ['identity', num('tokens'), num('scopes/token'), num('fewer than granted'), num('scopes used'), num('audiences used'), 'granted, never asked'],
      use.byIdentity.map((u) => [
        u.spiffeId,
        num(String(u.tokens)),
        num(formatNumber(u.scopesPerToken.mean)),
        num(formatShare(u.fewerThanGranted)),
        num(u.policyId === null ? 'not in policy' : `${u.scopesUsed.count}/${u.scopesUsed.of}`),
        num(u.policyId === null ? '' : `${u.audiencesUsed.count}/${u.audiencesUsed.of}`),
        u.unusedScopes.join(' '),
      ]),
    ),
  );
  return parts.join('');
}

function latency(report: MetricsReport): string {
  const { actions } = report.retrievalLatency;
  const parts = ['<h2 id="retrieval-latency">5. Retrieval latency</h2><p class="muted">From the broker\'s receipt of the call until its decision was recorded (allowed calls).</p>'];
  if (actions.every((a) => a.latencyMs.count === 0 && a.withoutLatency === 0)) {
    parts.push(empty('No Enroll, Renew or IssueToken was allowed in this window.'));
    return parts.join('');
  }
  parts.push(table(['action', num('calls'), num('p50'), num('p95'), num('p99'), num('max')], actions.map((a) => [a.action, num(String(a.latencyMs.count)), num(formatMs(a.latencyMs.p50)), num(formatMs(a.latencyMs.p95)), num(formatMs(a.latencyMs.p99)), num(formatMs(a.latencyMs.max))])));
  const groups = actions
    .filter((a) => a.latencyMs.count > 0)
    .map((a) => ({
      label: a.action,
      bars: (['p50', 'p95', 'p99', 'max'] as const).map((q) => ({ label: q, value: a.latencyMs[q] ?? 0, valueLabel: formatMs(a.latencyMs[q]) })),
    }));
  if (groups.length > 0) parts.push(`<h3>Latency percentiles</h3>${horizontalBarGroups('latency percentiles', groups)}`);
  const without = actions.reduce((total, a) => total + a.withoutLatency, 0);
  if (without > 0) parts.push(`<p class="muted">${plural(without, 'call')} without a recorded latency left out.</p>`);
  return parts.join('');
}

function auditability(report: MetricsReport): string {
  const a = report.auditability;
  const parts = ['<h2 id="auditability">6. Auditability</h2>'];
  const chain = a.chain.ok ? '<span class="badge ok">hash chain ok</span>' : `<span class="badge bad">hash chain INVALID at entry ${a.chain.firstBadSeq ?? '?'}</span>`;
  const signatures = a.chain.signaturesChecked ? '<span class="badge ok">checkpoint signatures verified</span>' : '<span class="badge warn">checkpoint signatures not checked (--audit-key)</span>';
  parts.push(`<p>${chain} ${signatures}</p>`);
  if (!a.chain.ok) parts.push(`<p>${escapeXml(a.chain.problem ?? 'unknown problem')}</p>`);
  parts.push(`<p>${plural(a.chain.entriesVerified, 'entry', 'entries')} verified in the whole log, ${plural(a.chain.checkpoints, 'checkpoint')}; ${a.lastCheckpoint === null ? 'no checkpoint yet' : escapeXml(`last checkpoint at entry ${a.lastCheckpoint.seq} (${a.lastCheckpoint.time}, ${formatMs(a.lastCheckpoint.ageMs)} ago), ${plural(a.lastCheckpoint.entriesAfter, 'entry', 'entries')} after it`)}.</p>`);
  if (a.entries === 0) {
    parts.push(empty('No audit entries in this window.'));
    return parts.join('');
  }
  parts.push(`<div class="cards">${card(String(a.entries), 'entries in the window')}${card(formatShare(a.identifiedActor), 'with an identified actor')}${card(formatShare(a.attributable), 'attributable to an identity')}${card(formatShare(a.checkpointCoverage), 'covered by a signed checkpoint')}</div>`);
  parts.push(
    stackedBar('entries by outcome', [
      { label: 'allowed', value: a.byOutcome.allowed },
      { label: 'denied', value: a.byOutcome.denied },
      { label: 'failed', value: a.byOutcome.failed },
    ]),
  );
  if (a.refusals.length === 0) parts.push('<p>No refusals.</p>');
  else parts.push(`<h3>Refusals by reason</h3>${table(['outcome', 'reason', num('count')], a.refusals.map((r) => [r.outcome, r.reason, num(String(r.count))]))}`);
  return parts.join('');
}

/** JSON inside a script element: `<` escaped so the text can never close the element. */
function embeddedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/** The report as one self-contained HTML page. */
export function reportHtml(report: MetricsReport): string {
  const title = `credbroker report: ${report.window.label}`;
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeXml(title)}</title><style>${STYLE}</style></head><body>`,
    `<header><h1>${escapeXml(title)}</h1>`,
    `<p class="muted">${escapeXml(`${report.window.from} … ${report.window.to}; generated ${report.generatedAt}`)}<br>`,
    `${escapeXml(`database ${report.sources.database}; policy ${report.sources.policy} (sha256 ${report.sources.policySha256.slice(0, 16)}…, trust domain ${report.sources.trustDomain})`)}</p></header>`,
    '<main>',
    secretTtl(report),
    rotationMttr(report),
    rotationCoverage(report),
    granularity(report),
    latency(report),
    auditability(report),
    '</main>',
    `<script type="application/json" id="credbroker-report">${embeddedJson(report)}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}
