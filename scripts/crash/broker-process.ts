/**
 * `credbroker serve` as a child process for the crash and soak runs: started on a state
 * directory (config, CA files, SQLite store, the SoftHSM token named in SOFTHSM2_CONF), its
 * addresses read from what it prints, killed with SIGKILL or stopped with SIGTERM. Waiting is
 * event-driven (stdout lines, the exit event), bounded by a timer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI_PATH } from '../../test/helpers/cli.js';

/** Longest a start may take before it counts as failed (tsx compiles the CLI on the fly). */
export const START_TIMEOUT_MS = 60_000;
/** Output kept for diagnostics, per stream. */
const TAIL_CHARS = 8_000;

/** How the process ended. */
export interface BrokerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A running `credbroker serve`. */
export class BrokerProcess {
  /** host:port of the gRPC listener, as printed. */
  readonly address: string;
  /** The /metrics URL, as printed. */
  readonly metricsUrl: string;
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<BrokerExit>;
  readonly #child: ChildProcess;
  readonly #output: { stdout: string; stderr: string };

  private constructor(child: ChildProcess, address: string, metricsUrl: string, exited: Promise<BrokerExit>, output: { stdout: string; stderr: string }) {
    this.#child = child;
    this.address = address;
    this.metricsUrl = metricsUrl;
    this.pid = child.pid ?? -1;
    this.exited = exited;
    this.#output = output;
  }

  /**
   * Spawns `credbroker serve --config <configPath>` and resolves once it prints where it listens
   * (gRPC and metrics: the config must enable the metrics listener).
   * @throws Error with its stderr when it exits first or does not listen within `timeoutMs`
   */
  static start(configPath: string, timeoutMs = START_TIMEOUT_MS): Promise<BrokerProcess> {
    const child = spawn(process.execPath, [CLI_PATH, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output = { stdout: '', stderr: '' };
    const keep = (stream: 'stdout' | 'stderr') => (chunk: string) => {
      output[stream] = (output[stream] + chunk).slice(-TAIL_CHARS);
    };
    child.stdout.setEncoding('utf8').on('data', keep('stdout'));
    child.stderr.setEncoding('utf8').on('data', keep('stderr'));
    const exited = new Promise<BrokerExit>((resolve) => {
      child.once('exit', (code, signal) => {
        resolve({ code, signal });
      });
    });
    return new Promise<BrokerProcess>((resolve, reject) => {
      let printed = '';
      const fail = (why: string): void => {
        cleanup();
        child.kill('SIGKILL');
        reject(new Error(`credbroker serve ${why}; stderr: ${output.stderr.slice(-2000)}`));
      };
      const onData = (chunk: string): void => {
        printed += chunk;
        const listening = /listening on (\S+:\d+)/.exec(printed)?.[1];
        const metrics = /metrics on (http:\/\/\S+\/metrics)/.exec(printed)?.[1];
        // The state directories of these runs always enable metrics (the e2e harness's config).
        if (listening !== undefined && metrics !== undefined) {
          cleanup();
          resolve(new BrokerProcess(child, listening, metrics, exited, output));
        }
      };
      const onExit = (code: number | null, signal: string | null): void => {
        fail(`exited before listening (code ${String(code)}, signal ${String(signal)})`);
      };
      const timer = setTimeout(() => {
        fail(`did not listen within ${timeoutMs} ms`);
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.off('exit', onExit);
      };
      child.stdout.on('data', onData);
      child.once('exit', onExit);
      child.once('error', (error) => {
        fail(`could not be spawned: ${error.message}`);
      });
    });
  }

  /** The last output lines, for diagnostics. */
  get output(): { readonly stdout: string; readonly stderr: string } {
    return this.#output;
  }

  /** SIGKILL: no drain, no final checkpoint, no cleanup. Resolves once it is gone. */
  kill(): Promise<BrokerExit> {
    this.#child.kill('SIGKILL');
    return this.exited;
  }

  /**
   * SIGTERM: drain, final checkpoint, exit 0. Resolves with how it exited; after `timeoutMs`
   * it is killed and the result says so (signal SIGKILL).
   */
  async stop(timeoutMs = 30_000): Promise<BrokerExit> {
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
