import { expect } from 'chai';
import { AuditLog, GENESIS_HASH, hashAuditEntry, secretLikeContent } from '../../../src/audit/index.js';
import { SqliteStore, type AuditEntryInput } from '../../../src/store/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { auditInput, certificate, serialOf } from '../store/store-fixtures.js';

describe('AuditLog', () => {
  let store: SqliteStore;
  const log = new AuditLog();

  beforeEach(async () => {
    store = await SqliteStore.open(':memory:');
  });

  afterEach(async () => {
    await store.close();
  });

  it('chains each entry on the last one, inside the caller\'s transaction', async () => {
    const appended = [];
    for (let n = 1; n <= 3; n++) appended.push(await store.transaction((tx) => log.append(tx, auditInput(n))));
    expect(appended.map((e) => e.seq)).to.deep.equal([1, 2, 3]);
    expect(appended[0]!.prevHash).to.equal(GENESIS_HASH);
    expect(appended[1]!.prevHash).to.equal(appended[0]!.hash);
    expect(appended[2]!.prevHash).to.equal(appended[1]!.hash);
    for (const entry of appended) expect(hashAuditEntry(entry)).to.equal(entry.hash);
    expect(await store.transaction((tx) => tx.lastAuditEntry())).to.deep.equal(appended[2]);
  });

  it('several entries in one transaction; concurrent transactions get consecutive seqs', async () => {
    await store.transaction(async (tx) => {
      await log.append(tx, auditInput(1));
      await log.append(tx, auditInput(2));
    });
    const seqs = await Promise.all(Array.from({ length: 20 }, (_, i) => store.transaction(async (tx) => (await log.append(tx, auditInput(i + 3))).seq)));
    expect([...seqs].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 3));
  });

  it('a rolled-back decision takes its entry with it; the next entry reuses the seq', async () => {
    await store.transaction((tx) => log.append(tx, auditInput(1)));
    const failure = new Error('issuance failed');
    const caught = await store
      .transaction(async (tx) => {
        await tx.insertCertificate(certificate(1));
        await log.append(tx, auditInput(2));
        throw failure;
      })
      .catch((error: unknown) => error);
    expect(caught).to.equal(failure);
    const next = await store.transaction((tx) => log.append(tx, auditInput(3)));
    expect(next.seq).to.equal(2);
    expect(await store.transaction((tx) => tx.getCertificate(serialOf(1)))).to.be.null;
  });

  describe('refuses details that look like secrets (internal audit.secret_in_details), writing nothing', () => {
    const refused: [string, Partial<AuditEntryInput>][] = [
      ['joinToken', { details: { joinToken: 'abc' } }],
      ['join_token', { details: { join_token: 'abc' } }],
      ['accessToken', { details: { accessToken: 'abc' } }],
      ['token', { details: { token: 'abc' } }],
      ['pin', { details: { pin: '1234' } }],
      ['soPin', { details: { soPin: '1234' } }],
      ['password', { details: { password: 'x' } }],
      ['userPassword', { details: { userPassword: 'x' } }],
      ['clientSecret', { details: { clientSecret: 'x' } }],
      ['key', { details: { key: 'x' } }],
      ['privateKey', { details: { privateKey: 'x' } }],
      ['private_key_id', { details: { private_key_id: 'x' } }],
      ['apiKey', { details: { apiKey: 'x' } }],
      ['csr', { details: { csr: 'x' } }],
      ['CSR', { details: { CSR: 'x' } }],
      ['shamir share', { details: { officerShare: 'x' } }],
      ['a PEM value', { details: { note: '-----BEGIN CERTIFICATE REQUEST-----\nMIIB' } }],
      ['a PEM in an array', { details: { notes: ['fine', ['-----BEGIN', 'PRIVATE', 'KEY-----'].join(' ')] } }],
      ['a JWS value', { details: { note: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln' } }],
      ['a join token value', { details: { note: `cbjt1-${'ab'.repeat(16)}-secretpart` } }],
      ['a join token as subject', { subject: `cbjt1-${'ab'.repeat(16)}-secretpart` }],
    ];
    for (const [name, change] of refused) {
      it(name, async () => {
        const input = { ...auditInput(1), ...change };
        expect(secretLikeContent(input)).to.be.a('string');
        const error = await catchBrokerError(store.transaction((tx) => log.append(tx, input)));
        expect([error.kind, error.code, error.publicMessage]).to.deep.equal(['internal', 'audit.secret_in_details', 'internal error']);
        expect(error.logMessage).to.not.contain('1234').and.to.not.contain('secretpart');
        expect(await store.transaction((tx) => tx.lastAuditEntry())).to.be.null;
      });
    }
  });

  it('accepts ids, labels and fingerprints', async () => {
    const details = {
      tokenId: 'jt0001',
      keyLabel: 'audit-2026',
      keySpkiSha256: 'ab'.repeat(32),
      csrSha256: 'cd'.repeat(32),
      serial: serialOf(1),
      spiffeId: 'spiffe://anonymizer.test/workers/blur',
      renewedFrom: serialOf(0),
      notAfter: '2026-03-01T10:00:00.000Z',
      reason: 'keyCompromise',
      ttlSeconds: 3600,
      policySha256: 'ef'.repeat(32),
      keyType: 'P-256',
      tokenAudience: 'storage',
    };
    expect(secretLikeContent({ ...auditInput(1), details })).to.be.null;
    const entry = await store.transaction((tx) => log.append(tx, { ...auditInput(1), details }));
    expect(entry.details).to.deep.equal(details);
  });
});
