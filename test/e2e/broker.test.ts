/**
 * The broker end to end: real HSM, real store, real mTLS clients on 127.0.0.1. Every rejection
 * the design promises: the exact status, nothing written, and the denial in the audit log.
 */
import { expect } from 'chai';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { newKeyAndCsr, unary, type BrokerClients } from '../../src/agent/index.js';
import { SoftwareSigner, systemRandom } from '../../src/core/index.js';
import { checkCsr, createIntermediateCertificate, createRootCertificate, issueLeafCertificate, parseSpiffeId } from '../../src/pki/index.js';
import { buildCsr } from '../helpers/csr-builder.js';
import { openssl } from '../helpers/openssl.js';
import { runCli } from '../helpers/cli.js';
import { BLUR, IMPORT, OPERATOR, TRUST_DOMAIN, grpcError, startE2eBroker, type ClientIdentity, type E2eBroker } from './harness.js';
import { expectRefused, snapshot } from './expect-refused.js';

/** A CSR from a key the test controls (any curve node knows), with optional extensions. */
function csrWith(options: { extensions?: x509.Extension[]; curve?: string; corruptSignature?: boolean } = {}): Buffer {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: options.curve ?? 'P-256' });
  const der = buildCsr(privateKey, {
    ...(options.extensions === undefined ? {} : { extensions: options.extensions.map((e) => ({ oid: e.type, critical: e.critical, value: new Uint8Array(e.value) })) }),
  });
  if (options.corruptSignature === true) der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0x01;
  return der;
}

/** A client identity from a CA that is not the broker's (same trust domain name, other keys). */
async function intruderIdentity(trustDomain = TRUST_DOMAIN): Promise<ClientIdentity> {
  const now = new Date();
  const rootSigner = await SoftwareSigner.generate('P-256');
  const root = await createRootCertificate({ signer: rootSigner, subject: 'CN=e2e root', notBefore: new Date(now.getTime() - 60_000), notAfter: new Date(now.getTime() + 86_400_000), random: systemRandom });
  const intermediateSigner = await SoftwareSigner.generate('P-256');
  const intermediate = await createIntermediateCertificate({
    issuerSigner: rootSigner,
    issuerCertificate: root,
    publicKey: intermediateSigner.publicKey,
    subject: 'CN=e2e intermediate',
    trustDomain,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 3_600_000),
    random: systemRandom,
  });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = await issueLeafCertificate({
    issuerSigner: intermediateSigner,
    issuerCertificate: intermediate,
    csr: await checkCsr(buildCsr(privateKey)),
    spiffeId: parseSpiffeId(`spiffe://${trustDomain}/pipeline/import`),
    profile: 'service',
    now,
    random: systemRandom,
  });
  return { keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), certificatePem: `${leaf.toString('pem')}\n`, chainPem: `${intermediate.toString('pem')}\n`, serial: leaf.serialNumber };
}

describe('e2e: the broker over mTLS', function () {
  this.timeout(60_000);
  let e2e: E2eBroker;
  let operator: ClientIdentity;
  let ops: BrokerClients;
  let service: ClientIdentity;

  before(async () => {
    e2e = await startE2eBroker();
    operator = await e2e.enroll(await e2e.bootstrapToken(OPERATOR));
    ops = e2e.as(operator);
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  it('GetTrustBundle needs no client certificate', async () => {
    const bundle = await unary<{ rootsPem: string; trustDomain: string }>(e2e.anonymous().enrollment, 'GetTrustBundle', {});
    expect(bundle.trustDomain).to.equal(TRUST_DOMAIN);
    expect(bundle.rootsPem).to.equal(e2e.rootPem.endsWith('\n') ? e2e.rootPem : `${e2e.rootPem}\n`);
  });

  it('an operator creates a join token; the service enrolls; openssl verifies its chain for client and server auth', async () => {
    const created = await unary<{ joinToken: string; tokenId: string; expiresAtUnix: number }>(ops.administration, 'CreateJoinToken', { spiffeId: IMPORT, ttlSeconds: 0 });
    expect(created.joinToken).to.match(/^cbjt1-/);
    service = await e2e.enroll(created.joinToken);
    const leaf = join(e2e.dir, 'import.pem');
    const chain = join(e2e.dir, 'import-chain.pem');
    writeFileSync(leaf, service.certificatePem);
    writeFileSync(chain, service.chainPem);
    for (const purpose of ['sslclient', 'sslserver']) {
      const result = openssl(['verify', '-x509_strict', '-purpose', purpose, '-CAfile', join(e2e.dir, 'root.pem'), '-untrusted', chain, leaf]);
      expect(result.output).to.contain(`${leaf}: OK`);
    }
    const text = openssl(['x509', '-noout', '-text', '-in', leaf]).output;
    expect(text).to.contain(`URI:${IMPORT}`);
    // The token never reaches the audit log; its id does.
    const audit = await unary<{ entries: { action: string; detailsJson: string }[] }>(ops.administration, 'QueryAudit', { action: 'Enroll', pageSize: 10 });
    expect(JSON.stringify(audit)).to.not.contain(created.joinToken);
    expect(JSON.stringify(audit)).to.contain(created.tokenId);
  });

  it('Renew with a new key: a new certificate that names the one it renewed', async () => {
    const { keyPem, csrDer } = await newKeyAndCsr();
    const reply = await unary<{ serial: string; certificatePem: string; chainPem: string }>(e2e.as(service).certificates, 'Renew', { csr: Buffer.from(csrDer) });
    const info = await unary<{ renewedFrom: string; spiffeId: string }>(ops.certificates, 'GetCertificate', { serial: reply.serial });
    expect(info).to.include({ renewedFrom: service.serial, spiffeId: IMPORT });
    service = { keyPem, certificatePem: reply.certificatePem, chainPem: reply.chainPem, serial: reply.serial };
  });

  describe('refusals', () => {
    it('Renew with the same key: INVALID_ARGUMENT', async () => {
      // A CSR over the key the caller already holds.
      const csr = buildCsr(createPrivateKey(service.keyPem));
      const error = await expectRefused(e2e, () => unary(e2e.as(service).certificates, 'Renew', { csr }), grpc.status.INVALID_ARGUMENT, 'Renew', 'renew.same_key');
      expect(error.details).to.contain('new key');
    });

    it('no client certificate: UNAUTHENTICATED', async () => {
      await expectRefused(e2e, () => unary(e2e.anonymous().certificates, 'Renew', { csr: Buffer.alloc(0) }), grpc.status.UNAUTHENTICATED, 'Renew', 'peer.no_certificate');
    });

    it('a certificate from another CA: UNAUTHENTICATED (TLS does not accept it as a client certificate)', async () => {
      const intruder = await intruderIdentity();
      const error = await expectRefused(e2e, () => unary(e2e.as(intruder).certificates, 'Renew', { csr: Buffer.alloc(0) }), grpc.status.UNAUTHENTICATED, 'Renew', 'peer.no_certificate');
      expect(error.details).to.contain('does not chain to this broker');
    });

    it('a certificate of another trust domain: UNAUTHENTICATED', async () => {
      const intruder = await intruderIdentity('payments.test');
      await expectRefused(e2e, () => unary(e2e.as(intruder).administration, 'QueryAudit', {}), grpc.status.UNAUTHENTICATED, 'QueryAudit', 'peer.no_certificate');
    });

    it('a service calling an operator RPC: PERMISSION_DENIED', async () => {
      await expectRefused(e2e, () => unary(e2e.as(service).administration, 'CreateJoinToken', { spiffeId: BLUR }), grpc.status.PERMISSION_DENIED, 'CreateJoinToken', 'policy.not_operator');
    });

    it('a join token reused, unknown, expired: UNAUTHENTICATED', async () => {
      const token = await e2e.bootstrapToken(BLUR);
      await e2e.enroll(token);
      const { csrDer } = await newKeyAndCsr();
      const enroll = (joinToken: string) => () => unary(e2e.anonymous().enrollment, 'Enroll', { joinToken, csr: Buffer.from(csrDer) });
      await expectRefused(e2e, enroll(token), grpc.status.UNAUTHENTICATED, 'Enroll', 'join_token.used');
      await expectRefused(e2e, enroll(`cbjt1-${'0'.repeat(32)}-${'A'.repeat(43)}`), grpc.status.UNAUTHENTICATED, 'Enroll', 'join_token.unknown');
      await expectRefused(e2e, enroll('not-a-token'), grpc.status.UNAUTHENTICATED, 'Enroll', 'join_token.malformed');
      const short = await e2e.bootstrapToken(BLUR, 60_000);
      e2e.clock.offsetMs = 120_000;
      try {
        await expectRefused(e2e, enroll(short), grpc.status.UNAUTHENTICATED, 'Enroll', 'join_token.expired');
      } finally {
        e2e.clock.offsetMs = 0;
      }
    });

    it('a join token used for another identity (CSR asks for another SPIFFE ID): PERMISSION_DENIED', async () => {
      const token = await e2e.bootstrapToken(BLUR);
      const csr = csrWith({ extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: IMPORT }])] });
      await expectRefused(e2e, () => unary(e2e.anonymous().enrollment, 'Enroll', { joinToken: token, csr }), grpc.status.PERMISSION_DENIED, 'Enroll', 'pki.san_not_allowed');
    });

    const badCsrs: [string, () => Buffer, grpc.status, RegExp][] = [
      ['a CSR with a bad signature', () => csrWith({ corruptSignature: true }), grpc.status.INVALID_ARGUMENT, /^pki\.csr/],
      ['a CSR with a weak key (P-192)', () => csrWith({ curve: 'prime192v1' }), grpc.status.INVALID_ARGUMENT, /^pki\.csr_key/],
      ['a CSR asking for CA:TRUE', () => csrWith({ extensions: [new x509.BasicConstraintsExtension(true, undefined, true)] }), grpc.status.INVALID_ARGUMENT, /^pki\.csr_ca_requested$/],
      ['a CSR with a DNS SAN outside policy', () => csrWith({ extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'evil.example.com' }])] }), grpc.status.PERMISSION_DENIED, /^pki\.san_not_allowed$/],
    ];
    for (const [name, make, status, reason] of badCsrs) {
      it(`${name}: ${grpc.status[status]}`, async () => {
        const token = await e2e.bootstrapToken(IMPORT);
        const csr = make();
        await expectRefused(e2e, () => unary(e2e.anonymous().enrollment, 'Enroll', { joinToken: token, csr }), status, 'Enroll', reason);
      });
    }

    it('a TTL above the identity\'s cap: INVALID_ARGUMENT', async () => {
      const token = await e2e.bootstrapToken(IMPORT);
      const { csrDer } = await newKeyAndCsr();
      await expectRefused(e2e, () => unary(e2e.anonymous().enrollment, 'Enroll', { joinToken: token, csr: Buffer.from(csrDer), ttlSeconds: 5 * 3600 }), grpc.status.INVALID_ARGUMENT, 'Enroll', /ttl/);
    });

    it('an unknown serial on Revoke: NOT_FOUND', async () => {
      await expectRefused(e2e, () => unary(ops.certificates, 'Revoke', { serial: 'abcdef0123', reason: 'REVOCATION_REASON_KEY_COMPROMISE' }), grpc.status.NOT_FOUND, 'Revoke', 'revoke.unknown_serial');
    });

    it('an oversized message: RESOURCE_EXHAUSTED before any handler runs', async () => {
      const before = await snapshot(e2e);
      const error = await grpcError(unary(e2e.anonymous().enrollment, 'Enroll', { joinToken: 'x', csr: Buffer.alloc(5 * 1024 * 1024, 1) }));
      expect(error.code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
      expect(await snapshot(e2e)).to.deep.equal(before);
    });

    it('an expired certificate (broker time moved past its notAfter): UNAUTHENTICATED', async () => {
      const blur = await e2e.enroll(await e2e.bootstrapToken(BLUR), 600);
      e2e.clock.offsetMs = 700_000;
      try {
        await expectRefused(e2e, () => unary(e2e.as(blur).certificates, 'Renew', { csr: Buffer.alloc(0) }), grpc.status.UNAUTHENTICATED, 'Renew', 'peer.expired');
      } finally {
        e2e.clock.offsetMs = 0;
      }
    });

    it('a revoked certificate: UNAUTHENTICATED at once, and listed in the CRL', async () => {
      const blur = await e2e.enroll(await e2e.bootstrapToken(BLUR));
      await unary(ops.certificates, 'Revoke', { serial: blur.serial, reason: 'REVOCATION_REASON_KEY_COMPROMISE' });
      const { csrDer } = await newKeyAndCsr();
      await expectRefused(e2e, () => unary(e2e.as(blur).certificates, 'Renew', { csr: Buffer.from(csrDer) }), grpc.status.UNAUTHENTICATED, 'Renew', 'peer.revoked');
      const crl = await unary<{ pem: string; number: string }>(ops.certificates, 'GetCrl', {});
      const crlPath = join(e2e.dir, 'intermediate.crl');
      writeFileSync(crlPath, crl.pem);
      const text = openssl(['crl', '-noout', '-text', '-in', crlPath]).output;
      expect(text.toLowerCase().replace(/:/g, '')).to.contain(blur.serial.replace(/^0+/, ''));
      expect(text).to.contain('Key Compromise');
    });
  });

  it('Issue: an operator certifies an identity policy knows; a service may not', async () => {
    const { csrDer } = await newKeyAndCsr();
    const issued = await unary<{ spiffeId: string; serial: string; notAfterUnix: number; notBeforeUnix: number }>(ops.certificates, 'Issue', { csr: Buffer.from(csrDer), spiffeId: BLUR, ttlSeconds: 600 });
    expect(issued.spiffeId).to.equal(BLUR);
    expect(issued.notAfterUnix - issued.notBeforeUnix).to.equal(660); // 10 min + the 1 min backdate
    await expectRefused(e2e, () => unary(e2e.as(service).certificates, 'Issue', { csr: Buffer.from(csrDer), spiffeId: BLUR }), grpc.status.PERMISSION_DENIED, 'Issue', 'policy.not_operator');
    await expectRefused(e2e, () => unary(ops.certificates, 'Issue', { csr: Buffer.from(csrDer), spiffeId: `spiffe://${TRUST_DOMAIN}/unknown/stage` }), grpc.status.PERMISSION_DENIED, 'Issue', 'policy.unknown_identity');
  });

  it('ListCertificates filters by identity and paginates', async () => {
    const first = await unary<{ certificates: { spiffeId: string }[]; nextPageToken: string }>(ops.certificates, 'ListCertificates', { spiffeId: IMPORT, pageSize: 1 });
    expect(first.certificates).to.have.length(1);
    expect(first.certificates[0]?.spiffeId).to.equal(IMPORT);
    expect(first.nextPageToken).to.not.equal('');
    const second = await unary<{ certificates: { spiffeId: string }[] }>(ops.certificates, 'ListCertificates', { spiffeId: IMPORT, pageSize: 1, pageToken: first.nextPageToken });
    expect(second.certificates).to.have.length(1);
  });

  it('health reports SERVING', async () => {
    const { protoPath } = await import('grpc-health-check');
    const protoLoader = await import('@grpc/proto-loader');
    const definition = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true, enums: String })) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
    const client = new definition.grpc.health.v1.Health(e2e.address, grpc.credentials.createSsl(Buffer.from(e2e.rootPem)));
    try {
      const reply = await unary<{ status: string }>(client, 'Check', { service: '' });
      expect(reply.status).to.equal('SERVING');
    } finally {
      client.close();
    }
  });

  it('credbroker audit verify passes on the broker\'s log and fails on a tampered copy, naming the entry', async () => {
    await e2e.broker.checkpointer.tick(e2e.clock.now());
    // A consistent copy of the live database (WAL included), then the same copy tampered with.
    const live = new Database(join(e2e.dir, 'broker.db'), { readonly: true });
    const copy = join(e2e.dir, 'audit-copy.db');
    try {
      await live.backup(copy);
    } finally {
      live.close();
    }
    // Checkpoint signatures checked against the audit key the ceremony published.
    const good = await runCli(['audit', 'verify', '--db', copy, '--audit-key', join(e2e.dir, 'audit-key.pem')]);
    expect(good.status, good.stderr).to.equal(0);
    expect(good.stdout + good.stderr).to.not.match(/not checked/i);
    const tampered = new Database(copy);
    try {
      // Someone with write access to the file drops the append-only triggers and edits an entry.
      for (const { name } of tampered.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_entries'").all() as { name: string }[]) {
        tampered.exec(`DROP TRIGGER "${name}"`);
      }
      expect(tampered.prepare("UPDATE audit_entries SET actor = 'spiffe://e2e.test/ops/mallory' WHERE seq = 2").run().changes).to.equal(1);
    } finally {
      tampered.close();
    }
    const bad = await runCli(['audit', 'verify', '--db', copy, '--audit-key', join(e2e.dir, 'audit-key.pem')]);
    expect(bad.status).to.equal(1);
    expect(bad.stderr).to.match(/entry 2\b/);
  });
});
