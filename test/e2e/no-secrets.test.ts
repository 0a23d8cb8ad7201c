/**
 * The whole scenario with every log line captured (debug level, the real pino logger): no PIN,
 * join token, JWS, private key or CSR free text may appear in the logs, the audit log, the
 * metrics or any error reply — for calls that succeed and calls that are refused.
 */
import { expect } from 'chai';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { newKeyAndCsr, unary } from '../../src/agent/index.js';
import { createLogger } from '../../src/cli/logger.js';
import { buildCsr } from '../helpers/csr-builder.js';
import { pemBody } from '../helpers/pem.js';
import { BLUR, IMPORT, OPERATOR, grpcError, startE2eBroker, type ClientIdentity, type E2eBroker } from './harness.js';

function fetchText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        resolve(body);
      });
    }).on('error', reject);
  });
}

describe('e2e: no secret in logs, audit, metrics or error replies', function () {
  this.timeout(60_000);
  const lines: string[] = [];
  let e2e: E2eBroker;

  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString('utf8'));
        callback();
      },
    });
    e2e = await startE2eBroker({ logger: createLogger('debug', sink) });
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  it('runs enrollment, renewal, tokens, refusals, rotation and revocation, then finds none of their secrets anywhere', async () => {
    const secrets: { what: string; value: string }[] = [];
    const keep = (what: string, value: string): void => {
      secrets.push({ what, value });
    };
    const replies: string[] = [];
    const refused = async (call: Promise<unknown>): Promise<void> => {
      const error = await grpcError(call);
      replies.push(`${error.code} ${error.details} ${JSON.stringify(error.metadata.getMap())}`);
    };
    keep('user PIN', readFileSync(join(e2e.dir, 'online.pin'), 'utf8').trim());
    keep('SO PIN', readFileSync(join(e2e.dir, 'online-so.pin'), 'utf8').trim());

    const operatorToken = await e2e.bootstrapToken(OPERATOR);
    keep('operator join token', operatorToken);
    const operator = await e2e.enroll(operatorToken);
    for (const line of pemBody(operator.keyPem)) keep('operator key', line);
    const ops = e2e.as(operator);

    // A service enrolls with a CSR whose subject carries free text the broker must never repeat.
    const marker = `FREETEXT${randomBytes(6).toString('hex')}`;
    const created = await unary<{ joinToken: string }>(ops.administration, 'CreateJoinToken', { spiffeId: IMPORT });
    keep('join token', created.joinToken);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    for (const line of pemBody(keyPem)) keep('service key', line);
    keep('CSR free text', marker);
    const enrolled = await unary<{ certificatePem: string; chainPem: string; serial: string }>(e2e.anonymous().enrollment, 'Enroll', {
      joinToken: created.joinToken,
      csr: buildCsr(privateKey, { commonName: marker }),
    });
    const service: ClientIdentity = { keyPem, certificatePem: enrolled.certificatePem, chainPem: enrolled.chainPem, serial: enrolled.serial };
    const clients = e2e.as(service);

    // Refused: the spent token again, a forged one, a CSR with a bad signature and free text.
    await refused(unary(e2e.anonymous().enrollment, 'Enroll', { joinToken: created.joinToken, csr: buildCsr(privateKey, { commonName: marker }) }));
    const forged = `cbjt1-${randomBytes(24).toString('base64url')}`;
    keep('forged join token', forged);
    await refused(unary(e2e.anonymous().enrollment, 'Enroll', { joinToken: forged, csr: buildCsr(privateKey) }));
    const another = await unary<{ joinToken: string }>(ops.administration, 'CreateJoinToken', { spiffeId: BLUR });
    keep('second join token', another.joinToken);
    const bad = buildCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, { commonName: marker });
    bad[bad.length - 3] = (bad[bad.length - 3] ?? 0) ^ 0xff;
    await refused(unary(e2e.anonymous().enrollment, 'Enroll', { joinToken: another.joinToken, csr: bad }));

    // Renewal with a new key made by the library.
    const next = await newKeyAndCsr();
    for (const line of pemBody(next.keyPem)) keep('renewed key', line);
    await unary(clients.certificates, 'Renew', { csr: Buffer.from(next.csrDer) });

    // Tokens, granted and refused.
    const token = await unary<{ token: string }>(clients.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'] });
    keep('JWS', token.token);
    keep('JWS signature', token.token.split('.')[2] ?? '');
    await refused(unary(clients.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.read'] }));

    // Rotation and revocation.
    const rotation = await unary<{ rotationId: string }>(ops.rotation, 'ForceRotate', { selector: IMPORT });
    await unary(ops.rotation, 'GetRotation', { rotationId: rotation.rotationId });
    await unary(ops.certificates, 'Revoke', { serial: service.serial, reason: 'REVOCATION_REASON_KEY_COMPROMISE' });
    await refused(unary(clients.tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.write'] }));
    await e2e.broker.checkpointer.tick(e2e.clock.now());

    // Everything the broker said or wrote.
    const audit: string[] = [];
    let pageToken = '';
    do {
      const page = await e2e.broker.store.transaction((tx) => tx.queryAudit({}, 1000, pageToken));
      audit.push(...page.items.map((entry) => JSON.stringify(entry)));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    const metricsPort = e2e.broker.metricsPort;
    expect(metricsPort, 'the harness enables metrics').to.be.a('number');
    const metrics = await fetchText(`http://127.0.0.1:${String(metricsPort)}/metrics`);
    expect(metrics).to.contain('credbroker_rpc_requests_total');

    expect(lines.length, 'the logger saw the scenario').to.be.greaterThan(5);
    expect(audit.length, 'the audit saw the scenario').to.be.greaterThan(10);
    expect(replies).to.have.length(5);
    const places = { logs: lines.join('\n'), audit: audit.join('\n'), metrics, 'error replies': replies.join('\n') };
    const found: string[] = [];
    for (const { what, value } of secrets) {
      expect(value.length, what).to.be.greaterThan(7);
      for (const [place, text] of Object.entries(places)) if (text.includes(value)) found.push(`${what} in ${place}`);
    }
    expect(found).to.deep.equal([]);
    // The ids that make them traceable are there.
    expect(places.audit).to.contain('"action":"IssueToken"').and.to.contain('"tokenId"');
  });
});
