/**
 * The peer to beat in the issue benchmark: `cfssl serve` (Go; Debian package golang-cfssl) with a
 * software P-256 CA key and no certificate database, on 127.0.0.1. Only detected on PATH, never
 * installed from here. Its files live in a temp directory removed on stop.
 */
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { PemPair } from './issue-ca.js';

/** How long cfssl may take to listen. */
const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 2_000;
/** Tail of cfssl's stderr kept for error messages. */
const STDERR_TAIL_BYTES = 4096;

/** The first executable `name` on PATH, or null. */
export function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** A running `cfssl serve`. */
export interface CfsslServer {
  readonly url: string;
  /** Stops cfssl (SIGTERM, then SIGKILL) and removes its files. */
  stop(): Promise<void>;
  /** Signals cfssl to stop, synchronously (for an emergency exit). */
  kill(): void;
  /** CPU time cfssl has used so far (user + system, all its threads), ms; NaN without /proc. */
  cpuMs(): number;
}

/** Clock ticks per second of /proc/<pid>/stat times. */
function clockTicksPerSecond(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** CPU time of process `pid` from /proc (utime + stime, fields 14 and 15 of stat), ms. */
function processCpuMs(pid: number | undefined, ticksPerSecond: number): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm) ": the command name may hold spaces, so split after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
  } catch {
    return Number.NaN;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

/**
 * Starts `cfssl serve` with `ca` as its signing CA; certificates get `usages` for mTLS and a
 * 1 h expiry, like the broker's service leaves.
 * @throws Error with cfssl's last stderr lines if it exits or does not listen in time
 */
export async function startCfssl(binary: string, ca: PemPair): Promise<CfsslServer> {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-bench-cfssl-'));
  writeFileSync(join(dir, 'ca.pem'), ca.certificatePem);
  writeFileSync(join(dir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ signing: { default: { expiry: '1h', usages: ['digital signature', 'key encipherment', 'client auth', 'server auth'] } } }),
  );
  const ticksPerSecond = clockTicksPerSecond();
  const port = await freePort();
  // -loglevel 2 (warning): at info level cfssl logs two lines per request.
  const child = spawn(binary, ['serve', '-address', '127.0.0.1', '-port', String(port), '-ca', join(dir, 'ca.pem'), '-ca-key', join(dir, 'ca-key.pem'), '-config', join(dir, 'config.json'), '-loglevel', '2'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
  });
  const state: { exited: string | null } = { exited: null };
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      state.exited = signal ?? `code ${code ?? '?'}`;
      resolve();
    });
    child.once('error', (error) => {
      state.exited = error.message;
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (state.exited === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exit;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await canConnect(port))) {
    if (state.exited !== null || Date.now() > deadline) {
      const why = state.exited === null ? `did not listen on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s` : `exited (${state.exited})`;
      await stop();
      throw new Error(`cfssl serve ${why}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    stop,
    kill: () => {
      child.kill('SIGKILL');
    },
    cpuMs: () => processCpuMs(child.pid, ticksPerSecond),
  };
}
