import { expect } from 'chai';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, agentConfigSchema, agentSettings } from '../../../src/agent/index.js';
import { ConfigError, loadConfigFile, parseConfig } from '../../../src/config/index.js';
import { BrokerError, ManualClock, ManualScheduler } from '../../../src/core/index.js';
import { FakeTransport, fixedRandom } from './fake-transport.js';

const MINIMAL = `broker: { address: broker.internal:8443, trustBundle: ./root.pem }
joinToken: { file: ./join-token }
output: { dir: ./out }
`;

function problems(text: string): { path: string; message: string }[] {
  try {
    parseConfig(text, agentConfigSchema, 'agent.yaml', { baseDir: '/etc/credbroker' });
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
  throw new Error('expected the config to be refused');
}

describe('agent/agent-config', () => {
  it('a minimal config gets the documented defaults', () => {
    const config = parseConfig(MINIMAL, agentConfigSchema, 'agent.yaml', { baseDir: '/etc/credbroker' });
    expect(config.keyType).to.equal('P-256');
    expect(config.watch).to.equal(true);
    expect(config.output).to.include({ key: 'key.pem', certificate: 'cert.pem', chain: 'chain.pem', trustBundle: 'bundle.pem' });
    expect(config.renewal).to.deep.equal({ at: 2 / 3, jitter: 0.1, backoffInitial: '1s', backoffMax: '60s', warnBefore: '10m' });
    expect(config.joinToken).to.deep.equal({ file: '/etc/credbroker/join-token' });
    expect(Object.isFrozen(config.output)).to.equal(true);
  });

  it('settings: paths against the config folder (file names against output.dir), durations in ms', () => {
    const config = parseConfig(
      `${MINIMAL}ttl: 30m
renewal: { at: 0.5, jitter: 0.05, backoffInitial: 250ms, backoffMax: 5s, warnBefore: 2m }
reload: { command: [systemctl, reload, media-import], timeout: 5s }
`,
      agentConfigSchema,
      'agent.yaml',
      { baseDir: '/etc/credbroker' },
    );
    const settings = agentSettings(config, '/etc/credbroker');
    expect(settings.broker.trustBundleFile).to.equal('/etc/credbroker/root.pem');
    expect(settings.files).to.include({ dir: '/etc/credbroker/out', key: '/etc/credbroker/out/key.pem', trustBundle: '/etc/credbroker/out/bundle.pem' });
    expect(settings.ttlSeconds).to.equal(1800);
    expect(settings.timing).to.deep.equal({ renewAtFraction: 0.5, jitterFraction: 0.05, backoffInitialMs: 250, backoffMaxMs: 5000, warnBeforeMs: 120_000 });
    expect(settings.reload).to.deep.equal({ command: ['systemctl', 'reload', 'media-import'], timeoutMs: 5000 });
  });

  const refusals: [string, string, string, RegExp][] = [
    ['an unknown top-level key', `${MINIMAL}colour: red\n`, 'colour', /unknown key "colour"/],
    ['an unknown key in output', `broker: { address: b:1, trustBundle: r }\noutput: { dir: o, keyFile: k }\n`, 'output.keyFile', /unknown key "keyFile"/],
    ['a misspelt renewal key, with a suggestion', `${MINIMAL}renewal: { jiter: 0.2 }\n`, 'renewal.jiter', /did you mean "jitter"/],
    ['an unknown key in pkcs12', `broker: { address: b:1, trustBundle: r }\noutput: { dir: o, pkcs12: { path: p, password: { file: f }, cipher: aes } }\n`, 'output.pkcs12.cipher', /unknown key/],
    ['a join token written in the config', `broker: { address: b:1, trustBundle: r }\njoinToken: cbjt1-abcdef\noutput: { dir: o }\n`, 'joinToken', /is a secret, and a secret is never written in a config file/],
    ['a join token from the environment', `broker: { address: b:1, trustBundle: r }\njoinToken: { env: JOIN_TOKEN }\noutput: { dir: o }\n`, 'joinToken.env', /never written in a config file or an environment variable/],
    ['a join token prompt (the agent is unattended)', `broker: { address: b:1, trustBundle: r }\njoinToken: { prompt: "token: " }\noutput: { dir: o }\n`, 'joinToken', /runs unattended/],
    ['a PKCS#12 password in the config', `broker: { address: b:1, trustBundle: r }\noutput: { dir: o, pkcs12: { path: p, password: hunter2 } }\n`, 'output.pkcs12.password', /is a secret/],
    ['an address without a port', `broker: { address: broker.internal, trustBundle: r }\noutput: { dir: o }\n`, 'broker.address', /host:port/],
    ['an RSA key type', `${MINIMAL}keyType: RSA-3072\n`, 'keyType', /P-256/],
    ['a TTL above 24h', `${MINIMAL}ttl: 48h\n`, 'ttl', /at most 24h/],
    ['renewal.at of 1.5', `${MINIMAL}renewal: { at: 1.5 }\n`, 'renewal.at', /< 1/],
    ['jitter not below at', `${MINIMAL}renewal: { at: 0.3, jitter: 0.3 }\n`, 'renewal.jitter', /below at/],
    ['backoffMax below backoffInitial', `${MINIMAL}renewal: { backoffInitial: 10s, backoffMax: 1s }\n`, 'renewal.backoffMax', />= backoffInitial/],
    ['a duration without unit', `${MINIMAL}renewal: { warnBefore: 600 }\n`, 'renewal.warnBefore', /string/],
    ['reload with both command and signal', `${MINIMAL}reload: { command: [x], signal: SIGHUP, pidFile: p }\n`, 'reload.signal', /exactly one of command/],
    ['reload signal without pidFile', `${MINIMAL}reload: { signal: SIGHUP }\n`, 'reload.pidFile', /pidFile/],
    ['reload with an unknown signal', `${MINIMAL}reload: { signal: SIGKILL, pidFile: p }\n`, 'reload.signal', /SIGHUP/],
    ['watch as text', `${MINIMAL}watch: "yes"\n`, 'watch', /true or false/],
  ];
  for (const [name, text, path, message] of refusals) {
    it(`refuses ${name}, naming ${path}`, () => {
      const found = problems(text);
      const problem = found.find((p) => p.path === path);
      expect(problem, JSON.stringify(found)).to.not.equal(undefined);
      expect(problem?.message).to.match(message);
    });
  }

  it('never echoes a join token written into the config', () => {
    const found = problems(`broker: { address: b:1, trustBundle: r }\njoinToken: cbjt1-do-not-echo-me\noutput: { dir: o }\n`);
    expect(JSON.stringify(found)).to.not.contain('do-not-echo-me');
  });

  it('reports every problem at once', () => {
    const found = problems('broker: { address: nope }\noutput: {}\nextra: 1\n');
    expect(found.map((p) => p.path).sort()).to.deep.equal(['broker.address', 'broker.trustBundle', 'extra', 'output.dir']);
  });

  describe('the join token file', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'credbroker-agent-config-'));
      writeFileSync(join(dir, 'root.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
      writeFileSync(join(dir, 'agent.yaml'), MINIMAL);
    });
    afterEach(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    async function create(): Promise<Agent> {
      const config = loadConfigFile(join(dir, 'agent.yaml'), agentConfigSchema);
      const clock = new ManualClock(Date.UTC(2026, 0, 1));
      return Agent.create(agentSettings(config, dir), { clock, scheduler: new ManualScheduler(clock), random: fixedRandom(0), transport: new FakeTransport(clock) });
    }

    it('with mode 0644: a startup error naming the file and the mode', async () => {
      const token = join(dir, 'join-token');
      writeFileSync(token, 'cbjt1-secret-value\n');
      chmodSync(token, 0o644);
      let error: unknown;
      try {
        await create();
      } catch (caught) {
        error = caught;
      }
      expect(error).to.be.instanceOf(BrokerError);
      expect((error as BrokerError).code).to.equal('secret.file_mode');
      expect((error as BrokerError).publicMessage).to.contain(token).and.contain('0644').and.contain('chmod 600').and.not.contain('cbjt1-secret-value');
    });

    it('absent: fine at create (a valid certificate may make it unnecessary)', async () => {
      const agent = await create();
      expect(agent.identity).to.equal(null);
      await agent.stop();
    });
  });
});
