/**
 * `credbroker report`: the six secrets-management measures (secret TTL, rotation MTTR, rotation
 * coverage, permission granularity, retrieval latency, auditability) for a time window, read
 * from a broker's store (read-only: a running broker keeps writing), its audit log and its
 * policy; as text, `--json` or a self-contained `--html` page. `credbroker report exposure`
 * ranks the policy's identities by validity × privilege scope × resources reachable.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { BrokerError, type Clock } from '../core/index.js';
import { loadPolicyFile } from '../policy/index.js';
import { SqliteStore } from '../store/index.js';
import type { Output } from './output.js';
import type { MetricsReport } from './report/metrics-report.js';
import { collectReport } from './report/collect-report.js';
import { exposureReport } from './report/exposure-report.js';
import { exposureText } from './report/exposure-text.js';
import { reportHtml } from './report/report-html.js';
import { readAuditPublicKey, requireSource, resolveReportSources } from './report/report-sources.js';
import { reportText } from './report/report-text.js';
import { DEFAULT_REPORT_SINCE, parseReportWindow } from './report/report-window.js';

interface ReportFlags {
  config?: string;
  db?: string;
  policy?: string;
  since?: string;
  from?: string;
  to?: string;
  auditKey?: string;
  json?: boolean;
  html?: string;
}

/** Writes `text` to `path` through a temporary file and a rename: never a half-written page. */
function writeWhole(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, text, { mode: 0o644 });
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new BrokerError('unavailable', { code: 'report.write', publicMessage: `cannot write ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, cause: error });
  }
}

/**
 * Builds the `report` command and its `exposure` subcommand.
 * @param clock the report time: the end of a `--since` window, ages of checkpoints and pending rotations
 */
export function reportCommand(output: Output, clock: Clock): Command {
  const report = new Command('report')
    .description('the six secrets-management measures for a time window (secret TTL, rotation MTTR, rotation coverage, permission granularity, retrieval latency, auditability), from the broker\'s store, audit log and policy')
    .option('-c, --config <file>', 'the broker\'s config file (its store.path and policy are read)')
    .option('--db <path>', 'the broker\'s SQLite database (opened read-only; default: the config\'s store.path)')
    .option('--policy <file>', 'the policy file (default: the config\'s policy)')
    .option('--since <duration>', `window: the last <duration>, e.g. 1h, 7d (default ${DEFAULT_REPORT_SINCE})`)
    .option('--from <instant>', 'window start, ISO 8601 (e.g. 2026-03-01 or 2026-03-01T09:00:00Z), inclusive')
    .option('--to <instant>', 'window end, ISO 8601, exclusive (default: now)')
    .option('--audit-key <pem>', 'the audit key\'s public half (PUBLIC KEY or CERTIFICATE PEM): checkpoint signatures are verified too')
    .option('--json', 'print the report as JSON (stable field names)')
    .option('--html <file>', 'write the report as one self-contained HTML page with charts')
    .action(async (flags: ReportFlags) => {
      if (flags.json === true && flags.html !== undefined) {
        throw new BrokerError('invalid', { code: 'cli.report_format', publicMessage: 'give either --json or --html, not both' });
      }
      const now = clock.now();
      const window = parseReportWindow(flags, now);
      const sources = resolveReportSources(flags);
      const database = requireSource(sources.databasePath, 'database');
      const policyPath = requireSource(sources.policyPath, 'policy');
      const policy = loadPolicyFile(policyPath);
      const auditKey = flags.auditKey === undefined ? undefined : readAuditPublicKey(flags.auditKey);
      const store = await SqliteStore.open(database, { readOnly: true });
      let result: MetricsReport;
      try {
        result = await collectReport({ store, policy, window, now, sources: { database, policy: policyPath }, auditKey });
      } finally {
        await store.close();
      }
      if (flags.json === true) {
        output.json(result);
      } else if (flags.html !== undefined) {
        const path = resolve(flags.html);
        writeWhole(path, reportHtml(result));
        output.line(`report for ${result.window.label} written to ${path}`);
      } else {
        for (const line of reportText(result)) output.line(line);
      }
      if (!result.auditability.chain.ok) {
        output.error(`credbroker: the audit log is INVALID at entry ${result.auditability.chain.firstBadSeq ?? '?'}: ${result.auditability.chain.problem ?? 'unknown problem'}`);
        process.exitCode = 1;
      }
    });

  report
    .command('exposure')
    .description('rank the policy\'s identities by exposure = validity × privilege scope × resources reachable; explain each score and flag outliers')
    .option('-c, --config <file>', 'the broker\'s config file (its policy is read)')
    .option('--policy <file>', 'the policy file (default: the config\'s policy)')
    .option('--json', 'print the ranking as JSON')
    .action((_options: unknown, command: Command) => {
      // The program parses options before it dispatches, so `report exposure --config x` hands
      // --config to `report`: read this command's options merged with its parent's.
      const flags = command.optsWithGlobals<ReportFlags>();
      const foreign = (['db', 'since', 'from', 'to', 'auditKey', 'html'] as const).filter((name) => flags[name] !== undefined);
      if (foreign.length > 0) {
        throw new BrokerError('invalid', { code: 'cli.report_exposure', publicMessage: `report exposure reads only the policy: it takes --config, --policy and --json, not ${foreign.map((name) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}` });
      }
      const policyPath = requireSource(resolveReportSources({ config: flags.config, policy: flags.policy }).policyPath, 'policy');
      const ranking = exposureReport(loadPolicyFile(policyPath), clock.now());
      if (flags.json === true) output.json(ranking);
      else for (const line of exposureText(ranking)) output.line(line);
    });

  return report;
}
