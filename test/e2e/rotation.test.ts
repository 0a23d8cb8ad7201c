/**
 * Forced rotation end to end: Watch streams get RENEW_NOW, renewals complete the rotation and
 * revoke the old serials, GetRotation reports counts and MTTR; keyCompromise revokes at once;
 * every refusal with its status and audit entry.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { newKeyAndCsr, unary, type BrokerClients } from '../../src/agent/index.js';
import { expectRefused } from './expect-refused.js';
import { BLUR, IMPORT, OPERATOR, grpcError, startE2eBroker, type ClientIdentity, type E2eBroker } from './harness.js';
import { openWatch } from './watch-stream.js';

interface RotationStatus {
  rotationId: string;
  selector: string;
  reason: string;
  targeted: number;
  connected: number;
  rotated: number;
  pending: number;
  revoked: number;
  expired: number;
  mttrP50Ms: number;
  mttrMaxMs: number;
  complete: boolean;
}

/** Renews `identity` with a new key; returns the new identity. */
async function renew(e2e: E2eBroker, identity: ClientIdentity): Promise<ClientIdentity> {
  const { keyPem, csrDer } = await newKeyAndCsr();
  const reply = await unary<{ serial: string; certificatePem: string; chainPem: string }>(e2e.as(identity).certificates, 'Renew', { csr: Buffer.from(csrDer) });
  return { keyPem, certificatePem: reply.certificatePem, chainPem: reply.chainPem, serial: reply.serial };
}

describe('e2e: forced rotation and Watch', function () {
  this.timeout(60_000);
  let e2e: E2eBroker;
  let ops: BrokerClients;

  before(async () => {
    e2e = await startE2eBroker();
    ops = e2e.as(await e2e.enroll(await e2e.bootstrapToken(OPERATOR)));
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  it('RENEW_NOW reaches the connected agent; its renewal completes the rotation and revokes the old serial', async () => {
    const first = await e2e.enroll(await e2e.bootstrapToken(BLUR));
    const watch = openWatch(e2e.as(first));
    expect((await watch.next()).kind).to.equal('WATCHING');

    const started = await unary<RotationStatus>(ops.rotation, 'ForceRotate', { selector: BLUR });
    expect(started).to.include({ targeted: 1, connected: 1, rotated: 0, pending: 1, complete: false, reason: 'REVOCATION_REASON_SUPERSEDED' });
    const push = await watch.next();
    expect(push).to.include({ kind: 'RENEW_NOW', rotationId: started.rotationId, serial: first.serial, reason: 'REVOCATION_REASON_SUPERSEDED' });

    const second = await renew(e2e, first);
    // The old serial is revoked as superseded: its Watch stream ends, and it can no longer renew.
    expect((await watch.ended).code).to.equal(grpc.status.OK);
    const old = await unary<{ revocationReason: string; revokedAtUnix: number }>(ops.certificates, 'GetCertificate', { serial: first.serial });
    expect(old.revocationReason).to.equal('REVOCATION_REASON_SUPERSEDED');
    expect((await grpcError(renew(e2e, first))).code).to.equal(grpc.status.UNAUTHENTICATED);

    const done = await unary<RotationStatus>(ops.rotation, 'GetRotation', { rotationId: started.rotationId });
    expect(done).to.include({ targeted: 1, connected: 1, rotated: 1, pending: 0, revoked: 0, complete: true });
    expect(done.mttrMaxMs).to.be.at.least(0).and.below(30_000);
    // The new certificate watches again without a pending push.
    const again = openWatch(e2e.as(second));
    expect((await again.next()).kind).to.equal('WATCHING');
    again.cancel();
    const audit = await unary<{ entries: { action: string; subject: string; actor: string; detailsJson: string }[] }>(ops.administration, 'QueryAudit', { subject: first.serial, pageSize: 10 });
    const revocation = audit.entries.find((e) => e.action === 'Revoke');
    expect(revocation?.actor, 'the revocation is the operator\'s decision').to.equal(OPERATOR);
    expect(JSON.parse(revocation?.detailsJson ?? '{}')).to.include({ rotationId: started.rotationId, supersededBy: second.serial, reason: 'superseded' });
  });

  it('an agent that connects after the request gets RENEW_NOW at once; one offline stays pending', async () => {
    const online = await e2e.enroll(await e2e.bootstrapToken(IMPORT));
    const offline = await e2e.enroll(await e2e.bootstrapToken(IMPORT));
    const started = await unary<RotationStatus>(ops.rotation, 'ForceRotate', { selector: IMPORT });
    expect(started.targeted).to.be.at.least(2);
    expect(started.connected).to.equal(0);
    const watch = openWatch(e2e.as(online));
    expect((await watch.next()).kind).to.equal('WATCHING');
    expect(await watch.next()).to.include({ kind: 'RENEW_NOW', rotationId: started.rotationId, serial: online.serial });
    await renew(e2e, online);
    await watch.ended;
    const status = await unary<RotationStatus>(ops.rotation, 'GetRotation', { rotationId: started.rotationId });
    expect(status.rotated).to.equal(1);
    expect(status.pending).to.equal(started.targeted - 1);
    expect(status.complete).to.equal(false);
    // The offline one renews on its own schedule later: that completes its target too.
    await renew(e2e, offline);
    const later = await unary<RotationStatus>(ops.rotation, 'GetRotation', { rotationId: started.rotationId });
    expect(later.rotated).to.equal(2);
  });

  it('KEY_COMPROMISE revokes every target at once and ends their streams; renewal is refused', async () => {
    const victim = await e2e.enroll(await e2e.bootstrapToken(BLUR));
    const watch = openWatch(e2e.as(victim));
    expect((await watch.next()).kind).to.equal('WATCHING');
    const started = await unary<RotationStatus>(ops.rotation, 'ForceRotate', { selector: BLUR, reason: 'REVOCATION_REASON_KEY_COMPROMISE' });
    expect(started.revoked).to.equal(started.targeted);
    expect(started).to.include({ pending: 0, rotated: 0, complete: true });
    expect(await watch.next()).to.include({ kind: 'RENEW_NOW', reason: 'REVOCATION_REASON_KEY_COMPROMISE' });
    expect((await watch.ended).code).to.equal(grpc.status.OK);
    const error = await grpcError(renew(e2e, victim));
    expect(error.code).to.equal(grpc.status.UNAUTHENTICATED);
    expect(error.details).to.match(/revoked.*new join token/);
    const crl = await unary<{ pem: string }>(ops.certificates, 'GetCrl', {});
    expect(crl.pem).to.contain('BEGIN X509 CRL');
  });

  describe('refusals', () => {
    it('a service calling ForceRotate or GetRotation: PERMISSION_DENIED', async () => {
      const service = e2e.as(await e2e.enroll(await e2e.bootstrapToken(IMPORT)));
      await expectRefused(e2e, () => unary(service.rotation, 'ForceRotate', { all: true }), grpc.status.PERMISSION_DENIED, 'ForceRotate', 'policy.not_operator');
      await expectRefused(e2e, () => unary(service.rotation, 'GetRotation', { rotationId: `rot-${'0'.repeat(32)}` }), grpc.status.PERMISSION_DENIED, 'GetRotation', 'policy.not_operator');
    });

    it('a bad selector, a selector with all, none at all, another trust domain, an unfit reason: INVALID_ARGUMENT', async () => {
      for (const request of [
        { selector: 'spiffe://e2e.test/a//b' },
        { selector: IMPORT, all: true },
        {},
        { selector: 'spiffe://other.test/pipeline/import' },
        { selector: IMPORT, reason: 'REVOCATION_REASON_CA_COMPROMISE' },
      ]) {
        await expectRefused(e2e, () => unary(ops.rotation, 'ForceRotate', request), grpc.status.INVALID_ARGUMENT, 'ForceRotate', /^rotation\.(selector|reason)$/);
      }
    });

    it('GetRotation of an unknown id: NOT_FOUND; of a malformed one: INVALID_ARGUMENT', async () => {
      await expectRefused(e2e, () => unary(ops.rotation, 'GetRotation', { rotationId: `rot-${'f'.repeat(32)}` }), grpc.status.NOT_FOUND, 'GetRotation', 'rotation.unknown');
      await expectRefused(e2e, () => unary(ops.rotation, 'GetRotation', { rotationId: 'rot-1' }), grpc.status.INVALID_ARGUMENT, 'GetRotation', 'rotation.id');
    });

    it('Watch without a client certificate: UNAUTHENTICATED, audited', async () => {
      const watch = openWatch(e2e.anonymous());
      const ended = await watch.ended;
      expect(ended.code).to.equal(grpc.status.UNAUTHENTICATED);
      const last = await e2e.broker.store.transaction((tx) => tx.lastAuditEntry());
      expect(last).to.include({ action: 'Watch', outcome: 'denied', reason: 'peer.no_certificate' });
    });
  });
});
