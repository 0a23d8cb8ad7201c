/** Runs the openssl command line, the independent judge of what credbroker issues. */
import { spawnSync } from 'node:child_process';

/** Runs `openssl ...args`; stdout and stderr together in `output`. */
export function openssl(args: readonly string[]): { status: number | null; output: string } {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}
