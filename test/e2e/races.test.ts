/**
 * Races over real mutual TLS (issue 7, item 3): one join token redeemed by 1,000 concurrent
 * Enroll calls, and 1,000 concurrent Renew calls by one identity, each with a fresh key. The
 * store and the audit log must come out consistent: one redemption, one certificate, one
 * allowed entry and 999 denials for the token; every renewed certificate stored, audited and
 * naming the caller's serial; unique serials; an audit chain that verifies with its signed
 * checkpoints.
 */
import { expect } from 'chai';
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as grpc from '@grpc/grpc-js';
import { unary, type BrokerClients } from '../../src/agent/index.js';
import { verifyAuditSqlite } from '../../src/audit/index.js';
import { buildCsr } from '../helpers/csr-builder.js';
import { BLUR, IMPORT, startE2eBroker, type E2eBroker } from './harness.js';

/** Concurrent calls per race. */
const CALLS = 1000;
/** Channels (TLS connections) the calls are spread over. */
const CHANNELS = 8;

/** `count` CSRs over fresh P-256 keys, made before the race starts, with their SPKI's SHA-256. */
function freshCsrs(count: number): { csr: Buffer; spkiSha256: string }[] {
  return Array.from({ length: count }, () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    return { csr: buildCsr(privateKey), spkiSha256: createHash('sha256').update(publicKey.export({ format: 'der', type: 'spki' })).digest('hex') };
  });
}

/** Settles every call; sorts outcomes into replies and gRPC errors. */
async function race<T>(calls: readonly (() => Promise<T>)[]): Promise<{ replies: T[]; errors: grpc.ServiceError[] }> {
  const settled = await Promise.allSettled(calls.map((call) => call()));
  const replies: T[] = [];
  const errors: grpc.ServiceError[] = [];
  for (const result of settled) {
    if (result.status === 'fulfilled') replies.push(result.value);
    else errors.push(result.reason as grpc.ServiceError);
  }
  return { replies, errors };
}

describe('e2e: races (1,000 concurrent calls over mTLS)', function () {
  this.timeout(120_000);
  let e2e: E2eBroker;
  let db: Database.Database;

  before(async () => {
    // Enroll's per-address rate limit would refuse most of the race: set it out of the way.
    e2e = await startE2eBroker({ enrollBurst: 5000 });
    db = new Database(join(e2e.dir, 'broker.db'), { readonly: true, fileMustExist: true });
  });

  after(async () => {
    if ((db as Database.Database | undefined) !== undefined) db.close();
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  it('1,000 concurrent redemptions of one join token: one certificate, 999 UNAUTHENTICATED, one allowed and 999 denied audit entries', async () => {
    const token = await e2e.bootstrapToken(BLUR);
    const tokenId = token.split('-')[1] ?? '';
    expect(tokenId).to.match(/^[0-9a-f]{32}$/);
    const csrs = freshCsrs(CALLS);
    const channels: BrokerClients[] = Array.from({ length: CHANNELS }, () => e2e.anonymous());
    const { replies, errors } = await race(csrs.map(({ csr }, i) => () => unary<{ serial: string; spiffeId: string }>(channels[i % CHANNELS]!.enrollment, 'Enroll', { joinToken: token, csr })));

    expect(replies, 'exactly one success').to.have.length(1);
    const winner = replies[0]!;
    expect(winner.spiffeId).to.equal(BLUR);
    expect(errors).to.have.length(CALLS - 1);
    const codes = new Set(errors.map((error) => `${grpc.status[error.code]} ${error.metadata.get('x-error-code').join()}`));
    expect([...codes]).to.deep.equal(['UNAUTHENTICATED join_token.used']);

    // The store: the token redeemed once, for the winner's serial; one certificate for the identity.
    const row = db.prepare('SELECT used_for_serial AS serial FROM join_tokens WHERE id = ?').get(tokenId) as { serial: string | null } | undefined;
    expect(row?.serial).to.equal(winner.serial);
    expect(db.prepare('SELECT count(*) FROM certificates WHERE spiffe_id = ?').pluck().get(BLUR)).to.equal(1);
    expect(db.prepare('SELECT serial FROM certificates WHERE spiffe_id = ?').pluck().get(BLUR)).to.equal(winner.serial);

    // The token's audit trail: 1 allowed (naming the serial) + 999 denied, nothing else.
    const trail = db
      .prepare("SELECT outcome, reason, json_extract(details, '$.serial') AS serial FROM audit_entries WHERE action = 'Enroll' AND json_extract(details, '$.tokenId') = ?")
      .all(tokenId) as { outcome: string; reason: string; serial: string | null }[];
    expect(trail).to.have.length(CALLS);
    const allowed = trail.filter((entry) => entry.outcome === 'allowed');
    expect(allowed.map((entry) => entry.serial)).to.deep.equal([winner.serial]);
    const denied = trail.filter((entry) => entry.outcome === 'denied');
    expect(denied).to.have.length(CALLS - 1);
    expect(new Set(denied.map((entry) => entry.reason))).to.deep.equal(new Set(['join_token.used']));
  });

  it('1,000 concurrent renewals by one identity with fresh keys: every certificate stored and audited, renewedFrom the caller, unique serials, the chain verifies', async () => {
    const service = await e2e.enroll(await e2e.bootstrapToken(IMPORT));
    const csrs = freshCsrs(CALLS);
    const channels: BrokerClients[] = Array.from({ length: CHANNELS }, () => e2e.as(service));
    const { replies, errors } = await race(csrs.map(({ csr }, i) => () => unary<{ serial: string; certificatePem: string }>(channels[i % CHANNELS]!.certificates, 'Renew', { csr })));

    // Nothing limits concurrent renewals of a valid identity: each must succeed.
    expect(errors.map((error) => `${grpc.status[error.code]}: ${error.details}`)).to.deep.equal([]);
    expect(replies).to.have.length(CALLS);
    const serials = replies.map((reply) => reply.serial);
    expect(new Set(serials).size, 'unique serials').to.equal(CALLS);

    const stored = new Map(
      (db.prepare('SELECT serial, renewed_from AS renewedFrom, spiffe_id AS spiffeId, spki_sha256 AS spki FROM certificates WHERE renewed_from = ?').all(service.serial) as { serial: string; renewedFrom: string; spiffeId: string; spki: string }[]).map((r) => [r.serial, r]),
    );
    expect(stored.size, 'exactly the renewed certificates name the caller').to.equal(CALLS);
    const audited = new Set(
      db.prepare("SELECT json_extract(details, '$.serial') FROM audit_entries WHERE action = 'Renew' AND outcome = 'allowed' AND json_extract(details, '$.renewedFrom') = ?").pluck().all(service.serial) as string[],
    );
    expect(audited.size).to.equal(CALLS);
    for (const reply of replies) {
      expect(stored.get(reply.serial)?.spiffeId, reply.serial).to.equal(IMPORT);
      expect(audited.has(reply.serial), `audit entry of ${reply.serial}`).to.equal(true);
    }
    // Each of the 1,000 fresh keys certified exactly once (no call's key lost or doubled).
    expect(new Set([...stored.values()].map((record) => record.spki))).to.deep.equal(new Set(csrs.map((c) => c.spkiSha256)));

    await e2e.broker.checkpointer.tick(e2e.clock.now());
    const verification = await verifyAuditSqlite(join(e2e.dir, 'broker.db'), { publicKey: createPublicKey(readFileSync(join(e2e.dir, 'audit-key.pem'))) });
    expect(verification.ok, verification.reason).to.equal(true);
    expect(verification.signaturesChecked).to.equal(true);
    expect(verification.entries).to.be.greaterThan(2 * CALLS);
    expect(verification.checkpoints).to.be.greaterThan(0);
  });
});
