/**
 * The HTML page: self-contained (no reference to anything outside it), charts drawn inline, text
 * from data escaped, the report's JSON carried along intact.
 */
import { expect } from 'chai';
import { ReportBuilder } from '../../../src/cli/report/report-builder.js';
import { reportHtml } from '../../../src/cli/report/report-html.js';
import { escapeXml, horizontalBarGroups, stackedBar, verticalBars } from '../../../src/cli/report/svg-chart.js';
import { parseReportWindow } from '../../../src/cli/report/report-window.js';
import { ALICE, ISSUED, LIVE, NOW, ROTATIONS, VERIFICATION, WINDOW, at, fixtureEntries, fixturePolicy } from './report-fixtures.js';
import { chainEntry } from '../../../src/audit/index.js';

function build(window = WINDOW): ReturnType<ReportBuilder['build']> {
  const builder = new ReportBuilder({ window, now: NOW, policy: fixturePolicy(), sources: { database: '/data/broker.db', policy: 'policy.yaml' } });
  const entries = fixtureEntries();
  for (const entry of entries) builder.addEntry(entry);
  // A refusal whose reason would be markup if it were not escaped.
  builder.addEntry(chainEntry(entries.at(-1) ?? null, { time: at(50), requestId: 'r', actor: ALICE, action: 'Revoke', outcome: 'failed', subject: '', reason: '<script>alert(1)</script>', details: {} }));
  for (const certificate of ISSUED) builder.addIssuedCertificate(certificate);
  for (const certificate of LIVE) builder.addLiveCertificate(certificate);
  for (const { rotation, targets } of ROTATIONS) builder.addRotation(rotation, targets);
  return builder.build({ verification: VERIFICATION, outstandingJoinTokens: 0 });
}

/** Everything in the page that could load something from elsewhere. */
const EXTERNAL = /(?:https?:)?\/\/(?!td\.test)[a-z0-9.-]+\.[a-z]{2,}|<link\b|<img\b|<iframe\b|\bsrc\s*=|@import|url\(/i;

describe('report/report-html', () => {
  const report = build();
  const html = reportHtml(report);

  it('is one self-contained page: inline style, no external reference, no executable script', () => {
    expect(html.startsWith('<!doctype html>')).to.equal(true);
    expect(html).to.contain('<style>');
    expect(html).to.not.match(/https?:\/\//);
    expect(html).to.not.match(EXTERNAL);
    const scripts = [...html.matchAll(/<script\b([^>]*)>/g)].map((m) => m[1]);
    expect(scripts).to.deep.equal([' type="application/json" id="credbroker-report"']);
  });

  it('draws the charts inline: TTL histograms, MTTR bars, latency percentiles, shares', () => {
    for (const label of ['certificate lifetimes', 'token lifetimes', 'join token lifetimes', 'MTTR per rotation', 'rotation targets', 'latency percentiles', 'identities renewed automatically', 'entries by outcome']) {
      expect(html, label).to.contain(`<svg class="chart" viewBox=`);
      expect(html, label).to.contain(`aria-label="${label}"`);
    }
  });

  it('escapes text from the data', () => {
    expect(html).to.not.contain('<script>alert(1)</script>');
    expect(html).to.contain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('carries the report as JSON that parses back to the same report', () => {
    const match = /<script type="application\/json" id="credbroker-report">(.*?)<\/script>/s.exec(html);
    expect(match).to.not.equal(null);
    expect(JSON.parse(match?.[1] ?? '')).to.deep.equal(report);
  });

  it('says plainly when a window has no data', () => {
    const empty = reportHtml(build(parseReportWindow({ from: '2020-01-01', to: '2020-01-02' }, NOW)));
    for (const sentence of [
      'No certificates, signed tokens or join tokens were issued in this window.',
      'No forced rotation was requested in this window.',
      'No identity has a live certificate at 2020-01-02T00:00:00.000Z.',
      'No signed tokens were issued in this window.',
      'No Enroll, Renew or IssueToken was allowed in this window.',
      'No audit entries in this window.',
    ]) {
      expect(empty).to.contain(sentence);
    }
    expect(empty).to.not.match(/NaN|Infinity|undefined/);
  });

  describe('svg-chart', () => {
    it('escapes &, <, >, quotes', () => {
      expect(escapeXml(`a&b<c>"d'`)).to.equal('a&amp;b&lt;c&gt;&quot;d&#39;');
    });

    it('vertical bars: heights proportional to the values, the tallest filling the plot', () => {
      const svg = verticalBars('t', [
        { label: 'a', value: 1 },
        { label: 'b', value: 4 },
        { label: 'c', value: 0 },
      ], { width: 300, height: 200 });
      const heights = [...svg.matchAll(/<rect class="s0" [^>]*height="([\d.]+)"/g)].map((m) => Number(m[1]));
      // Plot height = 200 − 22 (top) − 34 (bottom).
      expect(heights).to.deep.equal([36, 144, 0]);
    });

    it('all-zero data draws empty bars, not NaN', () => {
      expect(verticalBars('t', [{ label: 'a', value: 0 }])).to.not.contain('NaN');
      expect(horizontalBarGroups('t', [{ label: 'g', bars: [{ label: 'p50', value: 0 }] }])).to.not.contain('NaN');
      expect(stackedBar('t', [{ label: 'x', value: 0 }])).to.not.contain('NaN');
    });

    it('stacked bar segments split the width by value', () => {
      const svg = stackedBar('t', [
        { label: 'yes', value: 3 },
        { label: 'no', value: 1 },
      ], { width: 400 });
      const widths = [...svg.matchAll(/<rect class="s\d" x="[\d.]+" y="0" width="([\d.]+)"/g)].map((m) => Number(m[1]));
      expect(widths).to.deep.equal([300, 100]);
    });
  });
});
