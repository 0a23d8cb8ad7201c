/**
 * Where a report reads from: the config's store and policy (relative to the config's folder, as
 * `credbroker serve` resolves them), --db/--policy over the config, usage errors naming the flags,
 * and the audit key file's problems said plainly.
 */
import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BrokerError } from '../../../src/core/index.js';
import { ConfigError } from '../../../src/config/index.js';
import { readAuditPublicKey, requireSource, resolveReportSources } from '../../../src/cli/report/report-sources.js';

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('report/report-sources', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'credbroker-report-sources-'));
    writeFileSync(join(dir, 'broker.yaml'), 'hsm: { token: t, pin: { file: ./online.pin } }\nstore: { path: ./data/broker.db }\npolicy: ../pki/policy.yaml\n');
    writeFileSync(join(dir, 'bare.yaml'), 'hsm: { token: t, pin: { file: ./online.pin } }\n');
    writeFileSync(join(dir, 'bad.yaml'), 'hsm: { token: t, pin: { file: ./online.pin } }\nstores: {}\n');
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads the store and policy paths of the config, relative to its folder', () => {
    expect(resolveReportSources({ config: join(dir, 'broker.yaml') })).to.deep.equal({
      databasePath: join(dir, 'data', 'broker.db'),
      policyPath: resolve(dir, '..', 'pki', 'policy.yaml'),
    });
  });

  it('a config without a store section means ./credbroker.db, like serve; without a policy, none', () => {
    expect(resolveReportSources({ config: join(dir, 'bare.yaml') })).to.deep.equal({ databasePath: join(dir, 'credbroker.db'), policyPath: null });
  });

  it('--db and --policy win over the config, and work without one', () => {
    expect(resolveReportSources({ config: join(dir, 'broker.yaml'), db: 'other.db', policy: 'p.yaml' })).to.deep.equal({ databasePath: resolve('other.db'), policyPath: resolve('p.yaml') });
    expect(resolveReportSources({ db: '/x/broker.db' })).to.deep.equal({ databasePath: '/x/broker.db', policyPath: null });
  });

  it('a config that breaks its schema is a ConfigError naming the field', () => {
    const error = caught(() => resolveReportSources({ config: join(dir, 'bad.yaml') }));
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as ConfigError).message).to.contain('stores');
  });

  it('a missing source is a usage error naming the flags that give it', () => {
    const database = caught(() => requireSource(null, 'database')) as BrokerError;
    expect(database.code).to.equal('cli.report_sources');
    expect(database.publicMessage).to.contain('--config broker.yaml (its store.path) or --db <file>');
    expect((caught(() => requireSource(null, 'policy')) as BrokerError).publicMessage).to.contain('--policy <file>');
    expect(requireSource('/a', 'policy')).to.equal('/a');
  });

  describe('readAuditPublicKey', () => {
    it('reads a PUBLIC KEY PEM', () => {
      const path = join(dir, 'audit.pem');
      writeFileSync(path, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }));
      expect(readAuditPublicKey(path).asymmetricKeyType).to.equal('ec');
    });

    it('says which file cannot be read, and why', () => {
      const error = caught(() => readAuditPublicKey(join(dir, 'missing.pem'))) as BrokerError;
      expect(error.code).to.equal('audit.key_file');
      expect(error.publicMessage).to.match(/cannot read the audit key .*missing\.pem \(ENOENT\)/);
    });

    it('refuses a file without a public key or certificate (a private key, say)', () => {
      const path = join(dir, 'private.pem');
      writeFileSync(path, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
      expect((caught(() => readAuditPublicKey(path)) as BrokerError).publicMessage).to.contain('holds neither a PUBLIC KEY nor a CERTIFICATE');
    });

    it('refuses a damaged PEM', () => {
      const path = join(dir, 'damaged.pem');
      writeFileSync(path, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
      expect((caught(() => readAuditPublicKey(path)) as BrokerError).publicMessage).to.contain('is not a valid PEM public key or certificate');
    });
  });
});
