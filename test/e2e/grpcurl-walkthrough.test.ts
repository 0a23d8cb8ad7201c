/**
 * The README's grpcurl walkthrough, run as written against a real broker: with real grpcurl
 * (GRPCURL, PATH or ../shared/bin/grpcurl), and the same calls through a grpc-js client always.
 */
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unary } from '../../src/agent/index.js';
import { openssl } from '../helpers/openssl.js';
import { IMPORT, OPERATOR, TRUST_DOMAIN, startE2eBroker, type E2eBroker } from './harness.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** The fenced block tagged `sh walkthrough` in the README. */
function walkthrough(): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const match = /```sh walkthrough\n([\s\S]*?)```/.exec(readme);
  if (match?.[1] === undefined) throw new Error('README.md has no ```sh walkthrough block');
  return match[1];
}

function findGrpcurl(): string | null {
  if (process.env.GRPCURL !== undefined && process.env.GRPCURL !== '') return process.env.GRPCURL;
  const onPath = spawnSync('sh', ['-c', 'command -v grpcurl'], { encoding: 'utf8' }).stdout.trim();
  if (onPath !== '') return onPath;
  const shared = join(REPO, '..', 'shared', 'bin', 'grpcurl');
  return existsSync(shared) ? shared : null;
}

describe('e2e: the README grpcurl walkthrough', function () {
  this.timeout(120_000);
  let e2e: E2eBroker;
  let work: string;

  before(async () => {
    e2e = await startE2eBroker();
    const operator = await e2e.enroll(await e2e.bootstrapToken(OPERATOR));
    mkdirSync(join(e2e.dir, 'operator'), { mode: 0o700 });
    writeFileSync(join(e2e.dir, 'operator', 'key.pem'), operator.keyPem, { mode: 0o600 });
    writeFileSync(join(e2e.dir, 'operator', 'cert.pem'), operator.certificatePem + operator.chainPem);
    work = mkdtempSync(join(tmpdir(), 'credbroker-walkthrough-'));
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
    if ((work as string | undefined) !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('runs with grpcurl, as written', async function () {
    const grpcurl = findGrpcurl();
    if (grpcurl === null) {
      // grpcurl is a checking tool, not a dependency; the grpc-js test below always runs.
      this.skip();
    }
    // Asynchronously: the broker runs in this process and must keep answering.
    const result = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('bash', ['-euo', 'pipefail', '-c', walkthrough()], {
        cwd: work,
        env: { ...process.env, S: e2e.dir, A: e2e.address, TD: TRUST_DOMAIN, GRPCURL: grpcurl },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (status) => {
        resolve({ status, stdout, stderr });
      });
    });
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.status, output).to.equal(0);
    expect(result.stdout).to.contain('credbroker.v1.Administration').and.to.contain('grpc.health.v1.Health');
    expect(result.stdout).to.contain('Creates a single-use join token'); // proto comments via reflection
    expect(result.stdout).to.contain('import.pem: OK');
    expect(result.stdout).to.contain('revoked_at_unix');
    expect(result.stdout).to.match(/token_id: '[A-Za-z0-9_-]{22}'/).and.to.contain('bound: true');
    expect(result.stdout).to.contain('"jwks_json"').and.to.contain('"targeted"');
    expect(result.stdout, 'the token itself is kept in its file, not printed').to.not.contain((JSON.parse(readFileSync(join(work, 'token.json'), 'utf8')) as { token: string }).token);
    const serial = (JSON.parse(readFileSync(join(work, 'enrolled.json'), 'utf8')) as { serial: string }).serial;
    expect(result.stdout.toUpperCase()).to.contain(serial.toUpperCase().replace(/^0+/, ''));
    expect(readFileSync(join(work, 'join-token.json'), 'utf8')).to.match(/cbjt1-/);
  });

  it('the same calls through a grpc-js client', async () => {
    const operator = {
      keyPem: readFileSync(join(e2e.dir, 'operator', 'key.pem'), 'utf8'),
      certificatePem: readFileSync(join(e2e.dir, 'operator', 'cert.pem'), 'utf8'),
      chainPem: '',
      serial: '',
    };
    const ops = e2e.as(operator);
    const created = await unary<{ joinToken: string }>(ops.administration, 'CreateJoinToken', { spiffeId: IMPORT });
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(work, 'js.key')]);
    execFileSync('openssl', ['req', '-new', '-key', join(work, 'js.key'), '-subj', '/CN=import', '-outform', 'DER', '-out', join(work, 'js.csr')]);
    const enrolled = await unary<{ certificatePem: string; chainPem: string; serial: string }>(e2e.anonymous().enrollment, 'Enroll', {
      joinToken: created.joinToken,
      csr: readFileSync(join(work, 'js.csr')),
    });
    writeFileSync(join(work, 'js.pem'), enrolled.certificatePem);
    writeFileSync(join(work, 'js-chain.pem'), enrolled.chainPem);
    expect(openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(e2e.dir, 'root.pem'), '-untrusted', join(work, 'js-chain.pem'), join(work, 'js.pem')]).output).to.contain('js.pem: OK');
    const listed = await unary<{ certificates: { serial: string }[] }>(ops.certificates, 'ListCertificates', { spiffeId: IMPORT, pageSize: 10 });
    expect(listed.certificates.map((c) => c.serial)).to.include(enrolled.serial);
    const service = e2e.as({ keyPem: readFileSync(join(work, 'js.key'), 'utf8'), certificatePem: enrolled.certificatePem, chainPem: enrolled.chainPem, serial: enrolled.serial });
    const token = await unary<{ tokenId: string; bound: boolean }>(service.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'] });
    expect(token.bound).to.equal(true);
    const jwks = await unary<{ jwksJson: string; currentKid: string }>(e2e.anonymous().tokens, 'GetJwks', {});
    expect(jwks.jwksJson).to.contain(jwks.currentKid);
    const rotation = await unary<{ rotationId: string; targeted: number }>(ops.rotation, 'ForceRotate', { selector: IMPORT });
    expect(rotation.targeted).to.be.at.least(1);
    const progress = await unary<{ rotationId: string; pending: number }>(ops.rotation, 'GetRotation', { rotationId: rotation.rotationId });
    expect(progress.pending).to.equal(rotation.targeted);
    await unary(ops.certificates, 'Revoke', { serial: enrolled.serial, reason: 'REVOCATION_REASON_KEY_COMPROMISE' });
    const crl = await unary<{ pem: string; der: Buffer }>(ops.certificates, 'GetCrl', {});
    writeFileSync(join(work, 'js.crl'), crl.pem);
    const text = openssl(['crl', '-in', join(work, 'js.crl'), '-noout', '-text']).output;
    expect(text.toUpperCase()).to.contain(enrolled.serial.toUpperCase().replace(/^0+/, ''));
    const audit = await unary<{ entries: { action: string; outcome: string }[] }>(ops.administration, 'QueryAudit', { pageSize: 5 });
    expect(audit.entries.length).to.be.greaterThan(0);
  });
});
