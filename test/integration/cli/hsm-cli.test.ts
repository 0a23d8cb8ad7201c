/**
 * `credbroker hsm` as an operator or security officer runs it: the real executable against a
 * real SoftHSM token, PINs from 0600 files (never argv). Every refusal: clear message on
 * stderr, non-zero exit, nothing created.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../helpers/cli.js';
import { createTestToken, softHsmDir, writeSecretFile, type TestToken } from '../../helpers/softhsm.js';

describe('integration: credbroker hsm CLI', function () {
  let token: TestToken;
  let tokenFlags: string[];

  async function keyLabels(): Promise<string[]> {
    const result = await runCli(['hsm', 'keys', ...tokenFlags, '--json']);
    expect(result.status, result.stderr).to.equal(0);
    return (JSON.parse(result.stdout) as { label: string }[]).map((key) => key.label);
  }

  before(() => {
    token = createTestToken('cli');
    tokenFlags = ['--token', token.label, '--pin-file', token.pinFile];
  });

  describe('help', () => {
    for (const command of [['hsm'], ['hsm', 'tokens'], ['hsm', 'init-token'], ['hsm', 'keygen'], ['hsm', 'keys'], ['hsm', 'selftest']]) {
      it(`credbroker ${command.join(' ')} --help`, async () => {
        const result = await runCli([...command, '--help']);
        expect(result.status).to.equal(0);
        expect(result.stdout).to.contain('Usage: credbroker');
        if (command.length > 1 && command[1] !== 'tokens') expect(result.stdout).to.contain('--pin-file');
      });
    }
  });

  describe('the happy path', () => {
    it('init-token makes a token that tokens lists; a second init with the same label is refused', async () => {
      const label = `cli-init-${randomBytes(2).toString('hex')}`;
      const so = writeSecretFile('so', randomBytes(8).toString('hex'));
      const user = writeSecretFile('user', randomBytes(8).toString('hex'));
      const created = await runCli(['hsm', 'init-token', '--label', label, '--so-pin-file', so, '--pin-file', user]);
      expect(created.status, created.stderr).to.equal(0);
      expect(created.stdout).to.contain(`initialised token "${label}"`);
      const listed = await runCli(['hsm', 'tokens', '--json']);
      const tokens = JSON.parse(listed.stdout) as { label: string; initialized: boolean; userPinInitialized: boolean }[];
      expect(tokens.filter((t) => t.label === label)).to.deep.equal([
        tokens.find((t) => t.label === label && t.initialized && t.userPinInitialized),
      ]);
      const again = await runCli(['hsm', 'init-token', '--label', label, '--so-pin-file', so, '--pin-file', user]);
      expect(again.status).to.equal(1);
      expect(again.stderr).to.contain(`a token labelled "${label}" already exists`);
      const after = JSON.parse((await runCli(['hsm', 'tokens', '--json'])).stdout) as { label: string }[];
      expect(after.filter((t) => t.label === label)).to.have.length(1);
    });

    it('keygen, keys and selftest', async () => {
      for (const type of ['P-256', 'Ed25519']) {
        const result = await runCli(['hsm', 'keygen', ...tokenFlags, '--label', `cli-${type}`, '--type', type]);
        expect(result.status, result.stderr).to.equal(0);
        expect(result.stdout).to.contain(`generated ${type} key "cli-${type}"`).and.to.contain('extractable no');
      }
      const keys = JSON.parse((await runCli(['hsm', 'keys', ...tokenFlags, '--json'])).stdout) as Record<string, unknown>[];
      expect(keys.map((k) => [k.label, k.keyType, k.sensitive, k.extractable])).to.deep.include.members([
        ['cli-P-256', 'P-256', true, false],
        ['cli-Ed25519', 'Ed25519', true, false],
      ]);
      const selftest = await runCli(['hsm', 'selftest', ...tokenFlags, '--count', '5']);
      expect(selftest.status, selftest.stderr).to.equal(0);
      expect(selftest.stdout).to.match(/selftest: (\d+) of \1 keys passed/);
      expect(selftest.stdout).to.match(/cli-P-256\s+P-256\s+ok/);
    });

    it('reads the PIN from an inherited file descriptor', async () => {
      const pin = token.pin.reveal((value) => value);
      const result = await runCli(['hsm', 'keys', '--token', token.label, '--pin-fd', '3'], { fd3: `${pin}\n` });
      expect(result.status, result.stderr).to.equal(0);
    });

    it('reads the token and PIN source from a config file', async () => {
      const config = join(softHsmDir().dir, `cli-${randomBytes(3).toString('hex')}.yaml`);
      writeFileSync(config, `hsm:\n  token: ${token.label}\n  pin: { file: ${token.pinFile} }\n  sessions: 2\n`);
      const result = await runCli(['hsm', 'keys', '--config', config]);
      expect(result.status, result.stderr).to.equal(0);
      expect(result.stdout).to.contain('label');
    });
  });

  describe('refusals: message on stderr, non-zero exit, nothing created', () => {
    for (const flag of ['--pin', '--pin=123456', '--so-pin', '--password']) {
      it(`${flag} on argv is refused with why and what to use instead`, async () => {
        const before = await keyLabels();
        const args = flag.includes('=') ? ['hsm', 'keygen', '--token', token.label, flag, '--label', 'never'] : ['hsm', 'keygen', '--token', token.label, flag, '123456', '--label', 'never'];
        const result = await runCli(args);
        expect(result.status).to.equal(2);
        expect(result.stderr).to.contain('is not accepted').and.to.contain('ps').and.to.contain('-file PATH').and.to.contain('-fd N').and.to.contain('-prompt');
        expect(result.stderr).to.not.contain('123456');
        expect(await keyLabels()).to.deep.equal(before);
      });
    }

    it('a PIN variable in the environment is refused, not read', async () => {
      const result = await runCli(['hsm', 'keys', ...tokenFlags], { env: { CREDBROKER_HSM_PIN: 'x' } });
      expect(result.status).to.equal(2);
      expect(result.stderr).to.contain('CREDBROKER_HSM_PIN').and.to.contain('never reads secrets from the environment');
    });

    it('a PIN file with mode 0644 is refused, naming the file and its mode', async () => {
      const loose = writeSecretFile('loose', token.pin.reveal((value) => value));
      chmodSync(loose, 0o644);
      const before = await keyLabels();
      const result = await runCli(['hsm', 'keygen', '--token', token.label, '--pin-file', loose, '--label', 'never']);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.contain(loose).and.to.contain('0644').and.to.contain('0600');
      expect(await keyLabels()).to.deep.equal(before);
    });

    it('a missing PIN file is named (not reported as a failed login)', async () => {
      const missing = join(softHsmDir().dir, 'does-not-exist.pin');
      const result = await runCli(['hsm', 'keys', '--token', token.label, '--pin-file', missing]);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.contain(missing);
      expect(result.stderr).to.not.match(/incorrect|login/i);
    });

    it('a wrong PIN says so and is not retried', async () => {
      const wrong = writeSecretFile('wrong', randomBytes(8).toString('hex'));
      const result = await runCli(['hsm', 'keys', '--token', token.label, '--pin-file', wrong]);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.contain(`the PIN for token "${token.label}" is incorrect`).and.to.contain('not retried');
      expect(result.stderr).to.not.contain('CKR_');
    });

    it('a module path that does not exist is named', async () => {
      const result = await runCli(['hsm', 'keys', ...tokenFlags, '--module', '/nonexistent/libpkcs11.so']);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.contain('/nonexistent/libpkcs11.so');
    });

    it('an unknown token label is named, with the tokens present', async () => {
      const result = await runCli(['hsm', 'keys', '--token', 'no-such-token', '--pin-file', token.pinFile]);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.contain('no initialised token labelled "no-such-token"').and.to.contain(`"${token.label}"`);
    });

    it('an existing key label is refused and the key is kept', async () => {
      const first = await runCli(['hsm', 'keygen', ...tokenFlags, '--label', 'cli-kept', '--type', 'P-256']);
      expect(first.status, first.stderr).to.equal(0);
      const keys = JSON.parse((await runCli(['hsm', 'keys', ...tokenFlags, '--json'])).stdout) as { label: string; id: string }[];
      const result = await runCli(['hsm', 'keygen', ...tokenFlags, '--label', 'cli-kept', '--type', 'RSA-3072']);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.contain('a key labelled "cli-kept" already exists').and.to.contain('never overwrites');
      const after = JSON.parse((await runCli(['hsm', 'keys', ...tokenFlags, '--json'])).stdout) as { label: string; id: string; keyType: string }[];
      expect(after.map((k) => [k.label, k.id])).to.deep.equal(keys.map((k) => [k.label, k.id]));
      expect(after.find((k) => k.label === 'cli-kept')?.keyType).to.equal('P-256');
    });

    it('an unsupported key type is refused, naming the supported ones', async () => {
      const before = await keyLabels();
      const result = await runCli(['hsm', 'keygen', ...tokenFlags, '--label', 'never', '--type', 'P-521']);
      expect(result.status).to.equal(2);
      expect(result.stderr).to.contain('P-521').and.to.contain('P-256').and.to.contain('Ed25519');
      expect(await keyLabels()).to.deep.equal(before);
    });

    it('a key type whose mechanism the module lacks is refused, naming the mechanism; nothing created', async () => {
      // The same tokens, seen through a SoftHSM that offers only the EC and RSA mechanisms
      // (SoftHSM 2.6.1 honours an allow-list in slots.mechanisms, not the "-CKM_…" form).
      const { dir, confPath } = softHsmDir();
      const withoutEdDsa = join(dir, 'softhsm2-no-eddsa.conf');
      writeFileSync(withoutEdDsa, `${readFileSync(confPath, 'utf8')}slots.mechanisms = CKM_EC_KEY_PAIR_GEN,CKM_ECDSA,CKM_RSA_PKCS_KEY_PAIR_GEN,CKM_SHA256_RSA_PKCS\n`);
      const before = await keyLabels();
      const result = await runCli(['hsm', 'keygen', ...tokenFlags, '--label', 'never-ed', '--type', 'Ed25519'], { env: { SOFTHSM2_CONF: withoutEdDsa } });
      expect(result.status).to.equal(1);
      expect(result.stderr).to.contain(`token "${token.label}" does not support CKM_EC_EDWARDS_KEY_PAIR_GEN`).and.to.contain('Ed25519');
      expect(await keyLabels()).to.deep.equal(before);
    });

    it('an unknown config key is refused with its path; nothing created', async () => {
      const config = join(softHsmDir().dir, `bad-${randomBytes(3).toString('hex')}.yaml`);
      writeFileSync(config, `hsm:\n  token: ${token.label}\n  pin: { file: ${token.pinFile} }\n  sesions: 2\nlisten: 1\n`);
      const before = await keyLabels();
      const result = await runCli(['hsm', 'keygen', '--config', config, '--label', 'never']);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.contain('hsm.sesions').and.to.contain('listen').and.to.contain(config);
      expect(await keyLabels()).to.deep.equal(before);
    });

    it('a PIN written into the config file is refused with why', async () => {
      const config = join(softHsmDir().dir, `inline-${randomBytes(3).toString('hex')}.yaml`);
      writeFileSync(config, `hsm:\n  token: ${token.label}\n  pin: "123456"\n`);
      const result = await runCli(['hsm', 'keys', '--config', config]);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.contain('hsm.pin').and.to.match(/never written in a config file/i);
      expect(result.stderr).to.not.contain('123456');
    });
  });
});
