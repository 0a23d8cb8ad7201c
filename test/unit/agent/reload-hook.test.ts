import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runReloadHook } from '../../../src/agent/index.js';
import { BrokerError } from '../../../src/core/index.js';

async function failure(run: Promise<void>): Promise<BrokerError> {
  try {
    await run;
  } catch (error) {
    expect(error).to.be.instanceOf(BrokerError);
    return error as BrokerError;
  }
  throw new Error('expected the reload hook to fail');
}

describe('agent/reload-hook', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'credbroker-reload-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the command with its argv as given, without a shell', async () => {
    const out = join(dir, 'ran');
    // `$(touch pwned)` would run under a shell; as an argv item it is only text.
    await runReloadHook({ command: [process.execPath, '-e', 'require("fs").writeFileSync(process.argv[1], process.argv[2])', out, '$(touch pwned); echo'], timeoutMs: 10_000 });
    expect(readFileSync(out, 'utf8')).to.equal('$(touch pwned); echo');
  });

  it('a failing command: the exit status and the first line of stderr', async () => {
    const error = await failure(runReloadHook({ command: [process.execPath, '-e', 'console.error("nginx: bad config\\nmore"); process.exit(3)'], timeoutMs: 10_000 }));
    expect(error.code).to.equal('agent.reload');
    expect(error.publicMessage).to.contain('exit status 3').and.contain('nginx: bad config').and.not.contain('more');
  });

  it('a command that hangs is killed after its timeout', async () => {
    const error = await failure(runReloadHook({ command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'], timeoutMs: 200 }));
    expect(error.publicMessage).to.contain('killed after its timeout of 200 ms');
  });

  it('a missing command says so', async () => {
    const error = await failure(runReloadHook({ command: [join(dir, 'no-such-command')], timeoutMs: 1_000 }));
    expect(error.publicMessage).to.contain('no-such-command');
  });

  it('signals the process in the pid file', async () => {
    const pidFile = join(dir, 'service.pid');
    writeFileSync(pidFile, `${process.pid}\n`);
    const received = new Promise<string>((resolve) => process.once('SIGUSR2', () => { resolve('SIGUSR2'); }));
    await runReloadHook({ signal: 'SIGUSR2', pidFile });
    expect(await received).to.equal('SIGUSR2');
  });

  it('a missing or malformed pid file, or a process that is gone: named in the error', async () => {
    const pidFile = join(dir, 'service.pid');
    expect((await failure(runReloadHook({ signal: 'SIGHUP', pidFile }))).publicMessage).to.contain(`cannot read the pid file ${pidFile}`);
    writeFileSync(pidFile, 'not a pid');
    expect((await failure(runReloadHook({ signal: 'SIGHUP', pidFile }))).publicMessage).to.contain('expected a process id');
    writeFileSync(pidFile, '1');
    expect((await failure(runReloadHook({ signal: 'SIGHUP', pidFile }))).publicMessage).to.contain('expected a process id');
    writeFileSync(pidFile, '4194999');
    expect((await failure(runReloadHook({ signal: 'SIGHUP', pidFile }))).publicMessage).to.contain('cannot send SIGHUP to process 4194999');
  });
});
