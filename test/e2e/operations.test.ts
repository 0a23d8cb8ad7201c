/**
 * Operating the broker: the first operator through bootstrap-operator and enroll (CLI, no secret
 * on argv), and policy reload (a bad file keeps the old policy; a good one applies at once).
 */
import { expect } from 'chai';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { unary } from '../../src/agent/index.js';
import { runCli } from '../helpers/cli.js';
import { BLUR, OPERATOR, grpcError, startE2eBroker, type E2eBroker } from './harness.js';

describe('e2e: operating the broker', function () {
  this.timeout(60_000);
  let e2e: E2eBroker;

  before(async () => {
    e2e = await startE2eBroker();
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  it('bootstrap-operator on the broker host, then enroll on the operator\'s machine: key 0600, token file spent', async () => {
    const tokenFile = join(e2e.dir, 'op.token');
    const minted = await runCli(['bootstrap-operator', '--config', e2e.configPath, '--spiffe-id', OPERATOR, '--out', tokenFile]);
    expect(minted.status, minted.stderr).to.equal(0);
    expect(statSync(tokenFile).mode & 0o777).to.equal(0o600);
    const token = readFileSync(tokenFile, 'utf8').trim();
    expect(minted.stdout + minted.stderr).to.not.contain(token);

    const out = join(e2e.dir, 'op');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(out, { mode: 0o700 });
    const enrolled = await runCli(['enroll', '--broker', e2e.address, '--trust-bundle', join(e2e.dir, 'root.pem'), '--server-name', 'localhost', '--join-token-file', tokenFile, '--out', out]);
    expect(enrolled.status, enrolled.stderr).to.equal(0);
    expect(enrolled.stdout).to.contain(`enrolled as ${OPERATOR}`);
    expect(existsSync(tokenFile), 'the spent token file is deleted').to.equal(false);
    expect(statSync(join(out, 'key.pem')).mode & 0o777).to.equal(0o600);

    const operator = { keyPem: readFileSync(join(out, 'key.pem'), 'utf8'), certificatePem: readFileSync(join(out, 'cert.pem'), 'utf8'), chainPem: readFileSync(join(out, 'chain.pem'), 'utf8'), serial: '' };
    const listed = await unary<{ certificates: unknown[] }>(e2e.as(operator).certificates, 'ListCertificates', {});
    expect(listed.certificates.length).to.be.greaterThan(0);

    // The token was single-use: a second bootstrap for a service identity is refused.
    const refused = await runCli(['bootstrap-operator', '--config', e2e.configPath, '--spiffe-id', BLUR, '--out', join(e2e.dir, 'blur.token')]);
    expect(refused.status).to.equal(1);
    expect(refused.stderr).to.contain('is not an operator');
  });

  it('ReloadPolicy: a bad file keeps the policy in force and says why; a good one applies at once', async () => {
    const operator = await e2e.enroll(await e2e.bootstrapToken(OPERATOR));
    const ops = e2e.as(operator);
    const policyPath = join(e2e.dir, 'policy.yaml');
    const original = readFileSync(policyPath, 'utf8');
    try {
      writeFileSync(policyPath, `${original}surprise: true\n`);
      const refused = await unary<{ reloaded: boolean; error: string; policySha256: string }>(ops.administration, 'ReloadPolicy', {});
      expect(refused.reloaded).to.equal(false);
      expect(refused.error).to.contain('surprise');
      await unary(ops.administration, 'CreateJoinToken', { spiffeId: BLUR });

      // Blur's entry removed: nothing is granted by default any more.
      writeFileSync(policyPath, original.replace(/ {2}- id: spiffe:\/\/e2e\.test\/pipeline\/blur\n( {4}.*\n)+/, ''));
      const applied = await unary<{ reloaded: boolean; policySha256: string }>(ops.administration, 'ReloadPolicy', {});
      expect(applied.reloaded).to.equal(true);
      expect(applied.policySha256).to.not.equal(refused.policySha256);
      const denied = await grpcError(unary(ops.administration, 'CreateJoinToken', { spiffeId: BLUR }));
      expect(denied.code).to.equal(grpc.status.PERMISSION_DENIED);
      expect(denied.details).to.contain(`policy grants nothing to ${BLUR}`);
    } finally {
      writeFileSync(policyPath, original);
      await unary(ops.administration, 'ReloadPolicy', {});
    }
  });
});
