/**
 * A real PostgreSQL for tests and benchmarks: the server binaries of the machine's package
 * (Debian: postgresql), a cluster made by initdb in a temp folder, started by pg_ctl on a unix
 * socket in that folder (no TCP port: `listen_addresses = ''`), stopped and removed at the end.
 * Logins use a random password (scram-sha-256), kept in 0600 files, never on argv.
 *
 * When the binaries are missing the caller fails here, loudly, with how to install them: a
 * PostgreSQL suite that skips itself would let CI pass without ever touching PostgreSQL.
 *
 * PostgreSQL refuses to run as root; when the tests run as root (CI containers), the cluster is
 * made and run as the `postgres` user (created by Debian's package), else `nobody`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { Secret } from '../../src/core/index.js';
import type { PostgresConnection } from '../../src/store/index.js';

/** How to get the server binaries, for the failure message. */
export const POSTGRES_INSTALL_HINT =
  'install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; macOS: brew install postgresql@15); ' +
  'the tests look for initdb on PATH and in /usr/lib/postgresql/*/bin';

/** A running test cluster. */
export interface TestPostgres {
  /** The temp folder holding the cluster, its socket and its log. */
  readonly dir: string;
  /** The folder of the server's unix socket (the `host` to connect to). */
  readonly socketDir: string;
  readonly port: number;
  /** The superuser credbroker logs in as. */
  readonly user: string;
  readonly password: Secret;
  /** A 0600 file owned by this process's user that holds the password (for broker configs). */
  readonly passwordFile: string;
  /** Connection options for `database` (pool size default 4). */
  connection(database: string, poolSize?: number): PostgresConnection;
  /** Creates an empty database with a fresh name and returns the name. */
  createDatabase(prefix?: string): Promise<string>;
  /** Stops the server (immediate mode) and removes the folder. Idempotent. */
  stop(): void;
}

/** Options of {@link startTestPostgres}. */
export interface TestPostgresOptions {
  /**
   * Keep PostgreSQL's crash safety (fsync, synchronous commit), for benchmarks. Default false:
   * tests need no durability across power loss and run faster without fsync.
   */
  readonly durable?: boolean;
  /** `max_connections` (default 100). */
  readonly maxConnections?: number;
}

/** The folder holding initdb, pg_ctl and postgres, or an Error that says how to install them. */
export function postgresBinDir(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((name) => /^\d+$/.test(name) && existsSync(join(root, name, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) throw new Error(`PostgreSQL server binaries (initdb, pg_ctl) are required by these tests and were not found: ${POSTGRES_INSTALL_HINT}`);
  return join(root, newest, 'bin');
}

/** The uid/gid to run the server as: ours, or a service user when we are root. */
function serverUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  for (const name of ['postgres', 'nobody']) {
    const result = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    if (result.status === 0) {
      const uid = Number(result.stdout.trim());
      const gid = Number(spawnSync('id', ['-g', name], { encoding: 'utf8' }).stdout.trim());
      return { uid, gid };
    }
  }
  throw new Error('PostgreSQL refuses to run as root and there is neither a postgres nor a nobody user to run it as');
}

/**
 * Makes a cluster in a new temp folder and starts it (synchronously: initdb and pg_ctl are
 * short-lived children; a promise, so callers need not change if that changes).
 * @throws Error with an install hint when the binaries are missing; pg_ctl's log when it fails
 */
export function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const bin = postgresBinDir();
  const runAs = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-pg-'));
  const dataDir = join(dir, 'data');
  const socketDir = join(dir, 'sock');
  const logFile = join(dir, 'server.log');
  mkdirSync(socketDir, { mode: 0o700 });
  const user = 'credbroker';
  const passwordValue = randomBytes(18).toString('base64url');
  const password = Secret.from(passwordValue, 'test');
  // initdb reads the superuser's password from a file (never argv); the server's user must read it.
  const initPasswordFile = join(dir, 'initdb.pw');
  writeFileSync(initPasswordFile, `${passwordValue}\n`, { mode: 0o600 });
  const passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, `${passwordValue}\n`, { mode: 0o600 });
  if (runAs !== null) {
    for (const path of [dir, socketDir, initPasswordFile]) chownSync(path, runAs.uid, runAs.gid);
  }
  const port = 5432;
  const run = (command: string, args: readonly string[]): void => {
    const result = spawnSync(join(bin, command), args, { encoding: 'utf8', ...(runAs === null ? {} : { uid: runAs.uid, gid: runAs.gid }), cwd: dir });
    if (result.status !== 0) {
      let log = '';
      try {
        log = execFileSync('tail', ['-n', '30', logFile], { encoding: 'utf8' });
      } catch {
        // No log yet.
      }
      throw new Error(`${command} failed (${String(result.status ?? result.signal)}): ${result.stderr}${result.stdout}\n${log}`);
    }
  };
  let started = false;
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (started) spawnSync(join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { encoding: 'utf8', ...(runAs === null ? {} : { uid: runAs.uid, gid: runAs.gid }) });
    rmSync(dir, { recursive: true, force: true });
  };
  // A test run that dies mid-way still stops its server.
  process.once('exit', stop);
  try {
    run('initdb', ['-D', dataDir, '-U', user, `--pwfile=${initPasswordFile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C.UTF-8', '--no-instructions']);
    rmSync(initPasswordFile);
    const settings = [
      "listen_addresses = ''",
      `unix_socket_directories = '${socketDir}'`,
      `port = ${port}`,
      `max_connections = ${options.maxConnections ?? 100}`,
      'shared_buffers = 64MB',
      ...(options.durable === true ? [] : ['fsync = off', 'synchronous_commit = off', 'full_page_writes = off']),
    ];
    writeFileSync(join(dataDir, 'postgresql.auto.conf'), `${settings.join('\n')}\n`);
    if (runAs !== null) chownSync(join(dataDir, 'postgresql.auto.conf'), runAs.uid, runAs.gid);
    run('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start']);
    started = true;
  } catch (error) {
    stop();
    throw error;
  }
  let databases = 0;
  const connection = (database: string, poolSize = 4): PostgresConnection => ({ host: socketDir, port, database, user, password, poolSize });
  return Promise.resolve({
    dir,
    socketDir,
    port,
    user,
    password,
    passwordFile,
    connection,
    createDatabase: async (prefix = 'credbroker') => {
      const name = `${prefix}_${process.pid}_${++databases}`;
      const client = new pg.Client({ host: socketDir, port, user, database: 'postgres', password: passwordValue });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return name;
    },
    stop: () => {
      process.off('exit', stop);
      stop();
    },
  });
}
