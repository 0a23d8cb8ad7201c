/** Runs the real `credbroker` executable (bin/credbroker.js) as a child process. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI_PATH = fileURLToPath(new URL('../../bin/credbroker.js', import.meta.url));

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** Extra environment (SOFTHSM2_CONF is inherited from the test run). */
  readonly env?: NodeJS.ProcessEnv;
  /** Written to the child's fd 3 (a pipe), then closed: for `--pin-fd 3`. */
  readonly fd3?: string;
}

/** Runs `credbroker ...args` and resolves when it exits. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      env: { ...process.env, ...options.env },
      stdio: options.fd3 === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    if (options.fd3 !== undefined) {
      const pipe = child.stdio[3] as NodeJS.WritableStream;
      pipe.end(options.fd3);
    }
    child.on('error', reject);
    child.on('close', (status) => {
      resolve({ status, stdout, stderr });
    });
  });
}
