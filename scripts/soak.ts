/**
 * `npm run soak [-- --minutes 5] [-- --rate 200] [-- --agents 20] [-- --agent-ttl 30]`: the soak of
 * issue 7 (scripts/soak/soak-run.ts): a steady rate of renewals and access tokens plus renewing
 * agents against `credbroker serve` on 127.0.0.1, with the broker's RSS, heap and event-loop
 * lag sampled from its /metrics. Prints progress lines and a summary; exits 1 on any error, any
 * store inconsistency or an unclean stop.
 */
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { formatSoakReport, runSoak } from './soak/soak-run.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    rate: { type: 'string', default: '200' },
    agents: { type: 'string', default: '20' },
    'agent-ttl': { type: 'string', default: '30' },
  },
  strict: true,
});
const number = (name: string, text: string, min: number, max: number): number => {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) throw new Error(`--${name} must be a number from ${min} to ${max}, got ${text}`);
  return value;
};
const report = await runSoak({
  durationMs: Math.round(number('minutes', values.minutes, 0.05, 60) * 60_000),
  rate: number('rate', values.rate, 1, 5000),
  agents: Math.round(number('agents', values.agents, 0, 1000)),
  agentTtlSeconds: Math.round(number('agent-ttl', values['agent-ttl'], 1, 3600)),
  log: (line) => {
    console.log(line);
  },
});
console.log(formatSoakReport(report));
if (Object.keys(report.errors).length > 0 || report.check.problems.length > 0 || report.finalExit.code !== 0) {
  console.error('FAILED: see the summary above');
  process.exitCode = 1;
}
