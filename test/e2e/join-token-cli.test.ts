/**
 * `credbroker join-token` against a real broker: the operator's certificate makes a token that
 * lands only in a new 0600 file (never on stdout), and `credbroker enroll` spends it; a service
 * certificate is refused.
 */
import { expect } from 'chai';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { IMPORT, OPERATOR, startE2eBroker, type ClientIdentity, type E2eBroker } from './harness.js';

describe('e2e: credbroker join-token', function () {
  this.timeout(60_000);
  let e2e: E2eBroker;

  before(async () => {
    e2e = await startE2eBroker();
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  function writeIdentity(name: string, identity: ClientIdentity): { cert: string; key: string } {
    const cert = join(e2e.dir, `${name}-cert.pem`);
    const key = join(e2e.dir, `${name}-key.pem`);
    writeFileSync(cert, identity.certificatePem + identity.chainPem);
    writeFileSync(key, identity.keyPem, { mode: 0o600 });
    return { cert, key };
  }

  it('writes the token to a new 0600 file only; enroll spends it', async () => {
    const operator = writeIdentity('operator', await e2e.enroll(await e2e.bootstrapToken(OPERATOR)));
    const out = join(e2e.dir, 'import.token');
    const made = await runCli(['join-token', '--broker', e2e.address, '--server-name', 'localhost', '--trust-bundle', join(e2e.dir, 'root.pem'), '--cert', operator.cert, '--key', operator.key, '--spiffe-id', IMPORT, '--out', out]);
    expect(made.status, made.stderr).to.equal(0);
    const token = readFileSync(out, 'utf8').trim();
    expect(token).to.match(/^cbjt1-/);
    expect(statSync(out).mode & 0o777).to.equal(0o600);
    expect(made.stdout + made.stderr).to.not.contain(token);
    expect(made.stdout).to.match(/join token [0-9a-f]+ for spiffe:\/\/e2e\.test\/pipeline\/import written to/);

    const dir = join(e2e.dir, 'import-service');
    mkdirSync(dir, { mode: 0o700 });
    const enrolled = await runCli(['enroll', '--broker', e2e.address, '--server-name', 'localhost', '--trust-bundle', join(e2e.dir, 'root.pem'), '--join-token-file', out, '--out', dir]);
    expect(enrolled.status, enrolled.stderr).to.equal(0);
    expect(existsSync(out), 'the spent token file is deleted').to.equal(false);
    expect(readFileSync(join(dir, 'cert.pem'), 'utf8')).to.contain('BEGIN CERTIFICATE');

    const again = await runCli(['join-token', '--broker', e2e.address, '--server-name', 'localhost', '--trust-bundle', join(e2e.dir, 'root.pem'), '--cert', operator.cert, '--key', operator.key, '--spiffe-id', IMPORT, '--out', join(dir, 'cert.pem')]);
    expect(again.status, 'never overwrites a file').to.not.equal(0);
  });

  it('a service certificate is refused (PERMISSION_DENIED), and no file is written', async () => {
    const service = writeIdentity('service', await e2e.enroll(await e2e.bootstrapToken(IMPORT)));
    const out = join(e2e.dir, 'refused.token');
    const result = await runCli(['join-token', '--broker', e2e.address, '--server-name', 'localhost', '--trust-bundle', join(e2e.dir, 'root.pem'), '--cert', service.cert, '--key', service.key, '--spiffe-id', IMPORT, '--out', out]);
    expect(result.status).to.not.equal(0);
    expect(result.stderr).to.match(/not an operator/);
    expect(existsSync(out)).to.equal(false);
  });
});
