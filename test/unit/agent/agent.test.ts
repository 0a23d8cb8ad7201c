/** The file-writing agent on a fake broker: files, modes, the spent join token, the reload hook. */
import { createPrivateKey } from 'node:crypto';
import { expect } from 'chai';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, agentConfigSchema, agentSettings } from '../../../src/agent/index.js';
import { parseConfig } from '../../../src/config/index.js';
import { ManualClock, ManualScheduler } from '../../../src/core/index.js';
import { FakeTransport, fixedRandom } from './fake-transport.js';

describe('agent/Agent (files)', () => {
  let dir: string;
  let clock: ManualClock;
  let scheduler: ManualScheduler;
  let transport: FakeTransport;
  let agent: Agent | null;

  const marker = (): string[] => (existsSync(join(dir, 'reloads')) ? readFileSync(join(dir, 'reloads'), 'utf8').split('\n').filter((l) => l !== '') : []);

  async function create(reloadExit = 0): Promise<Agent> {
    const script = `require("fs").appendFileSync(${JSON.stringify(join(dir, 'reloads'))}, "reload\\n"); process.exit(${reloadExit})`;
    const text = `broker: { address: 127.0.0.1:1, trustBundle: root.pem }
joinToken: { file: join-token }
output: { dir: out }
watch: false
reload: { command: [${JSON.stringify(process.execPath)}, -e, ${JSON.stringify(script)}], timeout: 10s }
`;
    const config = parseConfig(text, agentConfigSchema, join(dir, 'agent.yaml'), { baseDir: dir });
    agent = await Agent.create(agentSettings(config, dir), { clock, scheduler, random: fixedRandom(0), transport });
    return agent;
  }

  async function start(): Promise<Agent> {
    const created = await create();
    await created.start();
    return created;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'credbroker-agent-'));
    writeFileSync(join(dir, 'root.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    writeFileSync(join(dir, 'join-token'), 'cbjt1-unit-agent-token\n', { mode: 0o600 });
    clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
    scheduler = new ManualScheduler(clock);
    transport = new FakeTransport(clock);
    agent = null;
  });

  afterEach(async () => {
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('enrolls with the join token file, deletes it, writes key 0600 and the certificates, runs the reload hook', async () => {
    const running = await start();
    const identity = running.identity!;
    expect(transport.tokens).to.deep.equal(['cbjt1-unit-agent-token']);
    expect(existsSync(join(dir, 'join-token')), 'a spent token file is deleted').to.equal(false);
    const out = join(dir, 'out');
    expect(statSync(join(out, 'key.pem')).mode & 0o777).to.equal(0o600);
    expect(statSync(join(out, 'cert.pem')).mode & 0o777).to.equal(0o644);
    expect(readFileSync(join(out, 'key.pem'), 'utf8')).to.equal(identity.privateKeyPem());
    expect(createPrivateKey(readFileSync(join(out, 'key.pem'), 'utf8')).asymmetricKeyType, 'a PEM private key (P-256 by default)').to.equal('ec');
    expect(readFileSync(join(out, 'cert.pem'), 'utf8')).to.equal(identity.certificatePem);
    expect(readFileSync(join(out, 'chain.pem'), 'utf8')).to.equal('INTERMEDIATE');
    expect(readFileSync(join(out, 'bundle.pem'), 'utf8')).to.equal('ROOTS-1');
    expect(marker()).to.deep.equal(['reload']);
    expect(running.status()).to.include({ reloads: 1, reloadFailures: 0, state: 'ready' });
  });

  it('each renewal writes a new key and certificate, then runs the hook again', async () => {
    const running = await start();
    const keyBefore = readFileSync(join(dir, 'out', 'key.pem'), 'utf8');
    const renewed = once(running.events, 'renewed');
    await scheduler.advance(running.status().renewAtMs! - clock.now().getTime());
    await renewed;
    expect(readFileSync(join(dir, 'out', 'cert.pem'), 'utf8')).to.equal(running.identity!.certificatePem);
    expect(readFileSync(join(dir, 'out', 'key.pem'), 'utf8')).to.not.equal(keyBefore);
    expect(marker()).to.deep.equal(['reload', 'reload']);
  });

  it('a failing reload hook is counted and reported; the rotation stands', async () => {
    const created = await create(4);
    const failures: string[] = [];
    created.events.on('failure', (error, stage) => failures.push(`${stage}: ${error.publicMessage}`));
    await created.start();
    expect(created.identity).to.not.equal(null);
    expect(created.status()).to.include({ reloads: 0, reloadFailures: 1, state: 'ready' });
    expect(failures).to.have.length(1);
    expect(failures[0]).to.match(/^reload: reload command .* failed \(exit status 4\)/);
    expect(marker()).to.deep.equal(['reload']);
  });
});
