/**
 * `npm run crash [-- --kills 20] [-- --workers 8] [-- --seed S] [-- --max-delay-ms 0]`: the
 * crash-consistency run of issue 7 (scripts/crash/crash-run.ts). A fresh CA on a temp SoftHSM
 * token, `credbroker serve` as a child, a bounded issuance loop against it, SIGKILL at random
 * points and a restart each time, then the store checks. Prints progress lines and a summary;
 * exits 1 on any inconsistency, any error while the broker was up, or an unclean final stop.
 */
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { formatCrashReport, runCrash } from './crash/crash-run.js';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '20' },
    workers: { type: 'string', default: '8' },
    seed: { type: 'string' },
    'max-delay-ms': { type: 'string', default: '0' },
  },
  strict: true,
});
const integer = (name: string, text: string, min: number, max: number): number => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, got ${text}`);
  return value;
};
const report = await runCrash({
  kills: integer('kills', values.kills, 1, 1000),
  workers: integer('workers', values.workers, 1, 64),
  maxDelayMs: integer('max-delay-ms', values['max-delay-ms'], 0, 10_000),
  ...(values.seed === undefined ? {} : { seed: integer('seed', values.seed, 0, 2 ** 31 - 1) }),
  log: (line) => {
    console.log(line);
  },
});
console.log(formatCrashReport(report));
const clean = report.check.problems.length === 0 && Object.keys(report.servingErrors).length === 0 && report.finalExit.code === 0;
if (!clean) {
  console.error('FAILED: see the summary above');
  process.exitCode = 1;
}
