/**
 * Root renewal with cross-signing, end to end: a ceremony makes a new root key and certificate
 * on the root token beside the old one, and two cross certificates (the new root's key issued
 * by the old root, the old root's key issued by the new one); a second ceremony makes an
 * intermediate under the new root; the broker, restarted with both roots and both cross
 * certificates, activates it. Then real TLS handshakes prove that a peer trusting only the old
 * root accepts leaves under the new root, a peer trusting only the new root accepts leaves
 * under the old one, and the broker accepts client certificates of both — every handshake is
 * counted, none may fail. `openssl verify` judges the same chains independently.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import { newKeyAndCsr, unary } from '../../src/agent/index.js';
import { systemRandom } from '../../src/core/index.js';
import { runCeremony } from '../../src/ceremony/index.js';
import { openssl } from '../helpers/openssl.js';
import { IMPORT, OPERATOR, TRUST_DOMAIN, openE2eBroker, startE2eBroker, type ClientIdentity, type E2eBroker } from './harness.js';

const ROUNDS = 10;

function certificatesIn(pem: string): x509.X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new x509.X509Certificate(block));
}

/** A mutual-TLS server presenting `identity` (its leaf and `chainPem`), trusting `clientCa`; it writes "ok" to each client it accepted. */
async function tlsServer(identity: ClientIdentity, chainPem: string, clientCa: string): Promise<{ server: tls.Server; port: number }> {
  const server = tls.createServer({ key: identity.keyPem, cert: identity.certificatePem + chainPem, ca: clientCa, requestCert: true, rejectUnauthorized: true }, (socket) => {
    socket.end('ok');
  });
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

/** One mutual-TLS handshake; resolves to null or the reason it failed. */
async function handshake(port: number, client: ClientIdentity, trusted: string): Promise<string | null> {
  const socket = tls.connect({ host: '127.0.0.1', port, key: client.keyPem, cert: client.certificatePem + client.chainPem, ca: trusted, servername: 'localhost', checkServerIdentity: () => undefined });
  try {
    const [data] = (await Promise.race([once(socket, 'data'), once(socket, 'error').then(([error]) => Promise.reject(error as Error))])) as [Buffer];
    return data.toString() === 'ok' ? null : `server said ${data.toString()}`;
  } catch (error) {
    return (error as Error).message;
  } finally {
    socket.destroy();
  }
}

describe('e2e: root renewal with cross certificates', function () {
  this.timeout(120_000);
  let e2e: E2eBroker;
  let dir = '';
  const pem = (name: string): string => readFileSync(join(dir, name), 'utf8');
  const counts = { handshakes: 0, failures: 0, messages: [] as string[] };
  let oldLeaf: ClientIdentity;
  let newLeaf: ClientIdentity;

  async function ceremony(name: string, body: string): Promise<void> {
    const suffix = /token: e2e-online-([0-9a-f]+)/.exec(readFileSync(e2e.configPath, 'utf8'))?.[1] ?? '';
    const plan = join(dir, `${name}.yaml`);
    writeFileSync(plan, `version: 1\nname: ${name}\ntrustDomain: ${TRUST_DOMAIN}\n${body.replaceAll('SUFFIX', suffix)}transcript: ${name}-transcript.jsonl\n`);
    await runCeremony(plan, { outDir: dir }, { clock: { now: () => new Date() }, random: systemRandom, print: () => undefined });
  }

  async function count(port: number, client: ClientIdentity, trusted: string, what: string): Promise<void> {
    for (let round = 0; round < ROUNDS; round++) {
      const failure = await handshake(port, client, trusted);
      if (failure === null) counts.handshakes++;
      else {
        counts.failures++;
        if (counts.messages.length < 10) counts.messages.push(`${what}: ${failure}`);
      }
    }
  }

  before(async () => {
    e2e = await startE2eBroker({ keepDir: true });
    dir = e2e.dir;
  });

  after(async () => {
    await e2e.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the renewal ceremony writes a new root (the old subject) and both cross certificates; the new root key is non-extractable', async () => {
    await ceremony(
      'root-renewal',
      `root:
  token: { label: e2e-root-SUFFIX }
  officers: [ { name: test, share: { file: root-share } } ]
  key: { label: root, type: P-256 }
  certificate: { path: root.pem }
rootRenewal:
  key: { label: root-2, type: P-256 }
  validity: 60d
  certificate: root-2.pem
  newSignedByOld: root-2-by-root.pem
  oldSignedByNew: root-by-root-2.pem
`,
    );
    const [oldRoot, newRoot, newByOld, oldByNew] = ['root.pem', 'root-2.pem', 'root-2-by-root.pem', 'root-by-root-2.pem'].map((name) => new x509.X509Certificate(pem(name))) as [x509.X509Certificate, x509.X509Certificate, x509.X509Certificate, x509.X509Certificate];
    expect(newRoot.subject).to.equal(oldRoot.subject);
    expect(await newRoot.isSelfSigned()).to.equal(true);
    expect(Buffer.from(newByOld.publicKey.rawData).equals(Buffer.from(newRoot.publicKey.rawData))).to.equal(true);
    expect(await newByOld.verify({ publicKey: oldRoot.publicKey, signatureOnly: true })).to.equal(true);
    expect(Buffer.from(oldByNew.publicKey.rawData).equals(Buffer.from(oldRoot.publicKey.rawData))).to.equal(true);
    expect(await oldByNew.verify({ publicKey: newRoot.publicKey, signatureOnly: true })).to.equal(true);
    for (const cross of [newByOld, oldByNew]) {
      const constraints = cross.getExtension(x509.BasicConstraintsExtension);
      expect([constraints?.ca, constraints?.pathLength, constraints?.critical]).to.deep.equal([true, 1, true]);
      expect(cross.notAfter.getTime()).to.be.at.most(oldRoot.notAfter.getTime());
    }
    const transcript = readFileSync(join(dir, 'root-renewal-transcript.jsonl'), 'utf8');
    const newKey = transcript.split('\n').filter((line) => line.includes('"key-generated"')).map((line) => JSON.stringify(JSON.parse(line)));
    expect(newKey.join()).to.include('"role":"new root"').and.include('"extractable":false');
    for (const role of ['new root', 'cross: new root by old', 'cross: old root by new']) expect(transcript).to.include(`"role":"${role}"`);
  });

  it('an intermediate under the new root; the restarted broker (both roots, both cross certificates) activates it', async () => {
    await ceremony(
      'intermediate-2',
      `root:
  token: { label: e2e-root-SUFFIX }
  officers: [ { name: test, share: { file: root-share } } ]
  key: { label: root-2, type: P-256 }
  certificate: { path: root-2.pem }
online:
  token: { label: e2e-online-SUFFIX, pin: { file: online.pin } }
  intermediate: { key: { label: intermediate-2, type: P-256 }, subject: "CN=e2e intermediate 2", validity: 25d, output: intermediate-2.pem }
`,
    );
    await e2e.close();
    const config = readFileSync(e2e.configPath, 'utf8').replace(
      '  roots: [root.pem]\n',
      '  roots: [root.pem, root-2.pem]\n  crossCertificates: [root-2-by-root.pem, root-by-root-2.pem]\n  intermediates: [ { key: intermediate-2, certificate: intermediate-2.pem } ]\n',
    );
    writeFileSync(e2e.configPath, config);
    e2e = await openE2eBroker(dir, { keepDir: true });

    // Before the roll: an old leaf; its chain carries the old root's key certified by the new root.
    oldLeaf = await e2e.enroll(await e2e.bootstrapToken(IMPORT));
    expect(certificatesIn(oldLeaf.chainPem).map((c) => c.subject)).to.deep.equal(['CN=e2e intermediate', 'CN=e2e root']);
    const bundle = await unary<{ intermediatesPem: string }>(e2e.anonymous().enrollment, 'GetTrustBundle', {});
    expect(certificatesIn(bundle.intermediatesPem)).to.have.length(4);

    const ops = e2e.as(await e2e.enroll(await e2e.bootstrapToken(OPERATOR)));
    const state = await unary<{ intermediates: { keyLabel: string; state: string }[] }>(ops.administration, 'RollIntermediate', {});
    expect(state.intermediates.map((i) => [i.keyLabel, i.state])).to.deep.include(['intermediate-2', 'active']);

    newLeaf = await e2e.enroll(await e2e.bootstrapToken(IMPORT));
    const chain = certificatesIn(newLeaf.chainPem);
    expect(chain.map((c) => c.subject)).to.deep.equal(['CN=e2e intermediate 2', 'CN=e2e root']);
    expect(chain[1]?.equal(new x509.X509Certificate(pem('root-2-by-root.pem')))).to.equal(true);
  });

  it('a peer trusting only the old root accepts a leaf under the new root, and the other way round; without the cross certificate it refuses', async () => {
    const oldRoot = pem('root.pem');
    const newRoot = pem('root-2.pem');
    const both = oldRoot + newRoot;
    // Servers present their leaf with the chain the broker returned (intermediate + cross certificate).
    const underNew = await tlsServer(newLeaf, newLeaf.chainPem, both);
    const underOld = await tlsServer(oldLeaf, oldLeaf.chainPem, both);
    const bare = await tlsServer(newLeaf, certificatesIn(newLeaf.chainPem)[0]?.toString('pem') ?? '', both);
    try {
      await count(underNew.port, oldLeaf, oldRoot, 'old-root client -> new leaf');
      await count(underOld.port, newLeaf, newRoot, 'new-root client -> old leaf');
      await count(underNew.port, newLeaf, both, 'both roots -> new leaf');
      await count(underOld.port, oldLeaf, both, 'both roots -> old leaf');
      // Without the cross certificate, a peer of the old root cannot reach it.
      expect(await handshake(bare.port, oldLeaf, oldRoot)).to.match(/unable to get local issuer certificate|unable to verify/i);
    } finally {
      for (const { server } of [underNew, underOld, bare]) server.close();
    }
  });

  it('the broker accepts client certificates under either root (Renew over mutual TLS)', async () => {
    for (const identity of [oldLeaf, newLeaf]) {
      const { csrDer } = await newKeyAndCsr();
      const reply = await unary<{ certificatePem: string }>(e2e.as(identity).certificates, 'Renew', { csr: Buffer.from(csrDer) });
      expect(new x509.X509Certificate(reply.certificatePem).issuer).to.equal('CN=e2e intermediate 2');
      counts.handshakes++;
    }
  });

  it('openssl verify agrees: old root + cross accepts the new leaf, new root + cross accepts the old leaf', () => {
    const write = (name: string, text: string): string => {
      const file = join(dir, name);
      writeFileSync(file, text);
      return file;
    };
    const newLeafFile = write('new-leaf.pem', newLeaf.certificatePem);
    const oldLeafFile = write('old-leaf.pem', oldLeaf.certificatePem);
    const byOld = openssl(['verify', '-x509_strict', '-CAfile', join(dir, 'root.pem'), '-untrusted', write('new-chain.pem', newLeaf.chainPem), newLeafFile]);
    expect(byOld.output).to.include(': OK');
    expect(byOld.status).to.equal(0);
    const byNew = openssl(['verify', '-x509_strict', '-CAfile', join(dir, 'root-2.pem'), '-untrusted', write('old-chain.pem', oldLeaf.chainPem), oldLeafFile]);
    expect(byNew.output).to.include(': OK');
    expect(byNew.status).to.equal(0);
    const refused = openssl(['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'intermediate-2.pem'), newLeafFile]);
    expect(refused.status).to.not.equal(0);
  });

  it('counted: every handshake succeeded', () => {
    console.log(`      root renewal: ${counts.handshakes} handshakes, ${counts.failures} failures`);
    expect(counts.messages).to.deep.equal([]);
    expect(counts.failures).to.equal(0);
    expect(counts.handshakes).to.equal(4 * ROUNDS + 2);
  });
});
