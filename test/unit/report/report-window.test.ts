/** The report window flags: --since (default 24h) or --from/--to, half-open; every misuse is a usage error. */
import { expect } from 'chai';
import { BrokerError } from '../../../src/core/index.js';
import { parseReportWindow, type ReportWindowFlags } from '../../../src/cli/report/report-window.js';

const NOW = new Date('2026-03-02T12:00:00.000Z');

describe('report/report-window', () => {
  it('defaults to the last 24h, ending now', () => {
    const window = parseReportWindow({}, NOW);
    expect(window.from.toISOString()).to.equal('2026-03-01T12:00:00.000Z');
    expect(window.to).to.deep.equal(NOW);
    expect(window.asOf).to.deep.equal(NOW);
    expect(window.label).to.equal('last 24h');
  });

  it('--since takes any duration with a unit', () => {
    expect(parseReportWindow({ since: '90m' }, NOW).from.toISOString()).to.equal('2026-03-02T10:30:00.000Z');
    expect(parseReportWindow({ since: '7d' }, NOW).from.toISOString()).to.equal('2026-02-23T12:00:00.000Z');
  });

  it('--from and --to: an explicit window; state read at --to', () => {
    const window = parseReportWindow({ from: '2026-03-01', to: '2026-03-01T18:00:00+02:00' }, NOW);
    expect(window.from.toISOString()).to.equal('2026-03-01T00:00:00.000Z');
    expect(window.to.toISOString()).to.equal('2026-03-01T16:00:00.000Z');
    expect(window.asOf.toISOString()).to.equal('2026-03-01T16:00:00.000Z');
  });

  it('--from alone runs until now; a --to in the future reads state now', () => {
    expect(parseReportWindow({ from: '2026-03-02T00:00:00Z' }, NOW).to).to.deep.equal(NOW);
    const future = parseReportWindow({ from: '2026-03-02T00:00:00Z', to: '2026-03-03T00:00:00Z' }, NOW);
    expect(future.to.toISOString()).to.equal('2026-03-03T00:00:00.000Z');
    expect(future.asOf).to.deep.equal(NOW);
  });

  const refused: [string, ReportWindowFlags, RegExp][] = [
    ['--since with --from', { since: '1h', from: '2026-03-01' }, /either --since or --from/],
    ['--since with --to', { since: '1h', to: '2026-03-01' }, /either --since or --from/],
    ['--to without --from', { to: '2026-03-01' }, /--to needs --from/],
    ['a bare number', { since: '24' }, /--since: "24" is not a duration/],
    ['a zero duration', { since: '0s' }, /longer than 0/],
    ['a time without a zone (host dependent)', { from: '2026-03-01T09:00:00' }, /not an ISO 8601 instant/],
    ['not a date', { from: 'yesterday' }, /not an ISO 8601 instant/],
    ['an impossible date', { from: '2026-02-30T00:00:00Z' }, /not an ISO 8601 instant/],
    ['from after to', { from: '2026-03-02', to: '2026-03-01' }, /must be before --to/],
    ['an empty window', { from: '2026-03-01', to: '2026-03-01T00:00:00Z' }, /must be before --to/],
  ];
  for (const [name, flags, message] of refused) {
    it(`refuses ${name} as a usage error`, () => {
      let caught: unknown;
      try {
        parseReportWindow(flags, NOW);
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(BrokerError);
      const error = caught as BrokerError;
      expect(error.code, 'cli.* codes exit 2').to.equal('cli.report_window');
      expect(error.publicMessage).to.match(message);
    });
  }
});
