/**
 * `credbroker agent` as an operator runs it: the real executable against a real broker (the e2e
 * harness on SoftHSM), secrets from 0600 files or an fd named in the config, never argv.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_PATH, runCli } from '../../helpers/cli.js';
import { BLUR, startE2eBroker, type E2eBroker } from '../../e2e/harness.js';

describe('integration: credbroker agent CLI', function () {
  this.timeout(60_000);
  let e2e: E2eBroker;
  let dir: string;

  const config = (joinToken = '{ file: join-token }', extra = ''): string => {
    const path = join(dir, 'agent.yaml');
    writeFileSync(path, `broker: { address: ${e2e.address}, serverName: localhost, trustBundle: root.pem }\njoinToken: ${joinToken}\noutput: { dir: out }\nwatch: false\n${extra}`);
    return path;
  };

  before(async () => {
    e2e = await startE2eBroker();
  });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'credbroker-agent-cli-'));
    writeFileSync(join(dir, 'root.pem'), e2e.rootPem);
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  it('--once enrolls, writes the files and deletes the token; a second --once finds nothing to do', async () => {
    const token = await e2e.bootstrapToken(BLUR);
    writeFileSync(join(dir, 'join-token'), `${token}\n`, { mode: 0o600 });
    const first = await runCli(['agent', '--config', config(), '--once']);
    expect(first.status, first.stderr).to.equal(0);
    expect(first.stdout).to.match(new RegExp(`credbroker agent: enrolled: ${BLUR}, certificate [0-9a-f]+ valid until`));
    expect(existsSync(join(dir, 'join-token'))).to.equal(false);
    expect(statSync(join(dir, 'out', 'key.pem')).mode & 0o777).to.equal(0o600);
    expect(readFileSync(join(dir, 'out', 'cert.pem'), 'utf8')).to.contain('BEGIN CERTIFICATE');
    for (const output of [first.stdout, first.stderr]) {
      expect(output).to.not.contain(token);
      expect(output).to.not.contain('PRIVATE KEY');
    }
    const second = await runCli(['agent', '--config', config(), '--once']);
    expect(second.status, second.stderr).to.equal(0);
    expect(second.stdout).to.contain('certificate still valid, not due for renewal');
  });

  it('--once with the join token on an inherited fd', async () => {
    const token = await e2e.bootstrapToken(BLUR);
    const result = await runCli(['agent', '--config', config('{ fd: 3 }'), '--once'], { fd3: `${token}\n` });
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.contain('enrolled');
  });

  it('a join token file with mode 0644: exit 1, naming the file and the mode', async () => {
    const file = join(dir, 'join-token');
    writeFileSync(file, 'cbjt1-loose\n');
    chmodSync(file, 0o644);
    const result = await runCli(['agent', '--config', config(), '--once']);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.contain(file).and.contain('0644').and.contain('chmod 600').and.not.contain('cbjt1-loose');
  });

  it('no certificate and no join token: exit 1 saying a join token is needed and where', async () => {
    const result = await runCli(['agent', '--config', config(), '--once']);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.contain('a new join token is needed').and.contain(join(dir, 'join-token'));
  });

  it('an unknown config key: exit 1 naming its path; a join token on argv: refused before anything runs', async () => {
    const bad = await runCli(['agent', '--config', config('{ file: join-token }', 'renewal: { jiter: 0.2 }\n'), '--once']);
    expect(bad.status).to.equal(1);
    expect(bad.stderr).to.contain('renewal.jiter: unknown key "jiter" (did you mean "jitter"?)');
    const argv = await runCli(['agent', '--config', config(), '--join-token', 'cbjt1-x']);
    expect(argv.status).to.equal(2);
    expect(argv.stderr).to.contain('--join-token is not accepted');
  });

  it('as a daemon: enrolls, says so, and stops cleanly on SIGTERM', async () => {
    writeFileSync(join(dir, 'join-token'), `${await e2e.bootstrapToken(BLUR)}\n`, { mode: 0o600 });
    const child = spawn(process.execPath, [CLI_PATH, 'agent', '--config', config()], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        if (stdout.includes('credbroker agent: running as')) resolve();
      });
      child.on('exit', () => { reject(new Error(`exited early: ${stdout} ${stderr}`)); });
    });
    expect(stdout).to.contain(`enrolled as ${BLUR}`);
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited, stderr).to.equal(0);
    expect(stdout).to.contain('credbroker agent: stopped');
    expect(stderr).to.contain('"msg":"enrolled: new certificate in use"');
  });
});
