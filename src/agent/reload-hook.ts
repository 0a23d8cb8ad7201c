/**
 * Tells the service that its files changed, after every rotation: a command run without a
 * shell (argv as configured, so nothing in a file name or serial can be interpreted), with a
 * timeout, or a signal to the process whose pid is in a pid file.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BrokerError } from '../core/index.js';
import type { ReloadAction } from './agent-config.js';

/** Largest output of a reload command kept for the error message. */
const MAX_OUTPUT_BYTES = 64 * 1024;

/**
 * Runs the reload action.
 * @throws BrokerError unavailable `agent.reload` saying what failed: the command's exit status
 *   or signal (e.g. killed after its timeout) and the first line of its stderr; an unreadable or
 *   malformed pid file; a process that does not exist
 */
export async function runReloadHook(action: ReloadAction): Promise<void> {
  if ('command' in action) {
    await runCommand(action.command, action.timeoutMs);
    return;
  }
  let pid: number;
  try {
    const text = readFileSync(action.pidFile, 'utf8').trim();
    if (!/^\d{1,10}$/.test(text) || Number(text) <= 1) throw new Error(`expected a process id, got ${JSON.stringify(text.slice(0, 20))}`);
    pid = Number(text);
  } catch (error) {
    throw reloadError(`cannot read the pid file ${action.pidFile}: ${messageOf(error)}`, error);
  }
  try {
    process.kill(pid, action.signal);
  } catch (error) {
    throw reloadError(`cannot send ${action.signal} to process ${pid} (from ${action.pidFile}): ${messageOf(error)}`, error);
  }
}

function runCommand(command: readonly string[], timeoutMs: number): Promise<void> {
  const [file, ...args] = command;
  if (file === undefined) return Promise.reject(reloadError('the reload command is empty'));
  return new Promise((resolve, reject) => {
    execFile(file, args, { shell: false, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES, windowsHide: true }, (error, _stdout, stderr) => {
      if (error === null) {
        resolve();
        return;
      }
      const failure = error as Error & { code?: number | string; signal?: NodeJS.Signals | null; killed?: boolean };
      const how =
        failure.killed === true && failure.signal === 'SIGKILL'
          ? `killed after its timeout of ${timeoutMs} ms`
          : typeof failure.code === 'number'
            ? `exit status ${failure.code}`
            : failure.signal !== null && failure.signal !== undefined
              ? `killed by ${failure.signal}`
              : messageOf(error);
      const detail = stderr.trim().split('\n')[0] ?? '';
      reject(reloadError(`reload command ${file} failed (${how})${detail === '' ? '' : `: ${detail.slice(0, 200)}`}`, error));
    });
  });
}

function reloadError(message: string, cause?: unknown): BrokerError {
  return new BrokerError('unavailable', { code: 'agent.reload', publicMessage: message, retryable: false, ...(cause === undefined ? {} : { cause }) });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
