/**
 * `npm run fuzz [-- --runs N] [-- --seed S]`: the long fuzzing run of issue 7. Runs each target
 * N times (default 10,000): the CSR checker (test/fuzz/csr-target.ts), the CSR reader's
 * differential fuzzer (test/unit/pki/csr-fuzz.ts), and the broker's RPCs over mutual TLS with
 * typed and raw messages (test/fuzz/rpc-target.ts, one real broker on 127.0.0.1:0 with a temp
 * SoftHSM token). Prints cases, accepted, refused by status/code, accepted-but-invalid and
 * crashes (both must be 0) and time per target; exits 1 if either count is not 0.
 */
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { fuzzCsrTarget } from '../test/fuzz/csr-target.js';
import { fuzzRpcTarget } from '../test/fuzz/rpc-target.js';
import type { FuzzReport } from '../test/fuzz/fuzz-report.js';
import { fuzzCsrReader } from '../test/unit/pki/csr-fuzz.js';
import { startE2eBroker } from '../test/e2e/harness.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10000' }, seed: { type: 'string' }, only: { type: 'string' } }, strict: true });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1 || runs > 10_000_000) throw new Error(`--runs must be an integer from 1 to 10,000,000, got ${values.runs}`);
const seed = values.seed === undefined ? undefined : Number(values.seed);
const only = values.only;
const seedOption = seed === undefined ? {} : { seed };

const reports: FuzzReport[] = [];
const print = (report: FuzzReport): void => {
  reports.push(report);
  console.log(report.format());
};

if (only === undefined || only === 'csr') {
  print(await fuzzCsrTarget(runs, { ...seedOption, opensslSample: 200 }));
  const started = Date.now();
  // The differential fuzzer throws on its first broken property; its counts are printed in the same shape.
  const reader = await fuzzCsrReader(runs, seedOption);
  console.log(
    [
      'csr-reader (differential, test/unit/pki/csr-fuzz.ts):',
      `  cases: ${reader.runs}`,
      `  accepted: ${reader.accepted}`,
      `  refused: ${Object.values(reader.refused).reduce((sum, count) => sum + count, 0)}`,
      ...Object.entries(reader.refused)
        .sort((a, b) => b[1] - a[1])
        .map(([code, count]) => `    ${code}: ${count}`),
      '  accepted-but-invalid: 0',
      '  crashes: 0',
      `  slowest case: ${reader.maxMs.toFixed(1)} ms`,
      `  time: ${((Date.now() - started) / 1000).toFixed(1)} s`,
    ].join('\n'),
  );
}
if (only === undefined || only === 'rpc') {
  // Enroll's rate limit at its configured maximum: RESOURCE_EXHAUSTED stays possible, rarely.
  const e2e = await startE2eBroker({ enrollBurst: 10_000 });
  try {
    for (const mode of ['fields', 'raw'] as const) print(await fuzzRpcTarget(e2e, runs, { mode, ...seedOption }));
  } finally {
    await e2e.close();
  }
}
const dirty = reports.filter((report) => !report.clean);
if (dirty.length > 0) {
  console.error(`FAILED: ${dirty.map((report) => report.target).join(', ')}`);
  process.exitCode = 1;
}
