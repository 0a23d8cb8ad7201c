/**
 * `npm run bench -- <name> [options]`: benchmarks, each reporting ratios against a baseline
 * measured in the same run. Every loop is bounded in count and time.
 */
import 'reflect-metadata';

const benches: Record<string, () => Promise<{ run(args: string[]): Promise<void> }>> = {
  hsm: () => import('./hsm.js'),
  issue: () => import('./issue.js'),
  tokens: () => import('./tokens.js'),
  'tokens-verify': () => import('./tokens-verify.js'),
  rotation: () => import('./rotation.js'),
};

const [name, ...args] = process.argv.slice(2);
const load = name === undefined ? undefined : benches[name];
if (load === undefined) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [options]\n`);
  process.exit(2);
}
await (await load()).run(args);
