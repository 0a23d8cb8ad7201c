/**
 * The contract every Store implementation keeps, as one suite: SqliteStore runs it on
 * `:memory:` and on a file; a PostgreSQL store will run it unchanged. Only the Store interface
 * is used here.
 */
import { expect } from 'chai';
import { chainEntry } from '../../../src/audit/index.js';
import type { BrokerError } from '../../../src/core/index.js';
import { MAX_PAGE_SIZE, type AuditCheckpoint, type AuditEntry, type AuditFilter, type CertificateFilter, type CertificateRecord, type RotationRecord, type RotationTargetRecord, type Store } from '../../../src/store/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { HOUR_MS, MINUTE_MS, T0, at, auditInput, certificate, chain, joinToken, serialOf, sha256Hex } from './store-fixtures.js';

/** Expects `action` to fail with a BrokerError of `kind` and `code`. */
async function expectError(action: Promise<unknown>, kind: string, code: string): Promise<BrokerError> {
  const error = await catchBrokerError(action);
  expect([error.kind, error.code], error.logMessage).to.deep.equal([kind, code]);
  return error;
}

function checkpointOf(entry: AuditEntry, time = T0): AuditCheckpoint {
  return { seq: entry.seq, hash: entry.hash, time, algorithm: 'ES256', keySpkiSha256: sha256Hex('audit key'), signature: Buffer.from(`sig ${entry.seq}`).toString('base64') };
}

/**
 * Registers the contract suite.
 * @param name suite title
 * @param makeStore a fresh, empty store per test (closed by the suite after each test)
 */
export function storeContract(name: string, makeStore: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, function () {
    let store: Store;

    beforeEach(async () => {
      store = await makeStore();
    });

    afterEach(async () => {
      await store.close();
    });

    async function insertCertificates(records: readonly CertificateRecord[]): Promise<void> {
      await store.transaction(async (tx) => {
        for (const record of records) await tx.insertCertificate(record);
      });
    }

    async function appendEntries(entries: readonly AuditEntry[]): Promise<void> {
      await store.transaction(async (tx) => {
        for (const entry of entries) await tx.insertAuditEntry(entry);
      });
    }

    async function listAll(filter: CertificateFilter, pageSize: number): Promise<string[][]> {
      const pages: string[][] = [];
      let token = '';
      do {
        const page = await store.transaction((tx) => tx.listCertificates(filter, pageSize, token));
        pages.push(page.items.map((item) => item.serial));
        token = page.nextPageToken;
        expect(pages.length, 'paging terminates').to.be.below(100);
      } while (token !== '');
      return pages;
    }

    describe('certificates', () => {
      it('round-trips every field of a certificate; an unknown serial is null', async () => {
        const record = certificate(1, { renewedFrom: null, profile: 'operator', spiffeId: 'spiffe://anonymizer.test/operators/alice' });
        const renewal = certificate(2, { renewedFrom: record.serial, revokedAt: at(HOUR_MS / 2), revocationReason: 'superseded' });
        await insertCertificates([record, renewal]);
        const [got, gotRenewal, missing] = await store.transaction(async (tx) => [
          await tx.getCertificate(record.serial),
          await tx.getCertificate(renewal.serial),
          await tx.getCertificate(serialOf(99)),
        ]);
        expect(got).to.deep.equal({ ...record, der: new Uint8Array(record.der) });
        expect(gotRenewal).to.deep.equal({ ...renewal, der: new Uint8Array(renewal.der) });
        expect(Buffer.from(got!.der).equals(Buffer.from(record.der))).to.be.true;
        expect(got!.notAfter.getTime()).to.equal(record.notAfter.getTime());
        expect(missing).to.be.null;
      });

      it('refuses a second certificate with the same serial (conflict) and keeps the first', async () => {
        await insertCertificates([certificate(1)]);
        const other = certificate(2, { serial: serialOf(1) });
        await expectError(insertCertificates([other]), 'conflict', 'store.certificate_exists');
        const kept = await store.transaction((tx) => tx.getCertificate(serialOf(1)));
        expect(kept?.sha256).to.equal(certificate(1).sha256);
      });

      it('refuses a malformed record as an internal error naming the field', async () => {
        const error = await expectError(insertCertificates([certificate(1, { serial: 'NOT-HEX' })]), 'internal', 'store.invalid_record');
        expect(error.logMessage).to.contain('serial');
        expect(error.publicMessage).to.equal('internal error');
        await expectError(insertCertificates([certificate(1, { notAfter: new Date(Number.NaN) })]), 'internal', 'store.invalid_record');
        await expectError(insertCertificates([certificate(1, { revokedAt: T0 })]), 'internal', 'store.invalid_record');
      });

      it('revokes once: the second revocation returns false and the first time and reason stand', async () => {
        await insertCertificates([certificate(1)]);
        const first = await store.transaction((tx) => tx.revokeCertificate(serialOf(1), at(MINUTE_MS), 'keyCompromise'));
        const second = await store.transaction((tx) => tx.revokeCertificate(serialOf(1), at(2 * MINUTE_MS), 'superseded'));
        const unknown = await store.transaction((tx) => tx.revokeCertificate(serialOf(42), at(MINUTE_MS), 'superseded'));
        expect([first, second, unknown]).to.deep.equal([true, false, false]);
        const record = await store.transaction((tx) => tx.getCertificate(serialOf(1)));
        expect(record?.revokedAt).to.deep.equal(at(MINUTE_MS));
        expect(record?.revocationReason).to.equal('keyCompromise');
      });

      it('lists revoked certificates that are not yet expired', async () => {
        // 1 and 2 revoked, 3 not; 1 expires at T0+1h+1m, 2 at T0+1h+2m: checked at T0+1h+1m30s.
        await insertCertificates([certificate(1), certificate(2), certificate(3)]);
        await store.transaction(async (tx) => {
          await tx.revokeCertificate(serialOf(1), at(MINUTE_MS), 'keyCompromise');
          await tx.revokeCertificate(serialOf(2), at(MINUTE_MS), 'superseded');
        });
        const atTime = new Date(certificate(1).notAfter.getTime() + 30_000);
        const revoked = await store.transaction((tx) => tx.listRevokedUnexpired(atTime));
        expect(revoked.map((r) => r.serial)).to.deep.equal([serialOf(2)]);
        const earlier = await store.transaction((tx) => tx.listRevokedUnexpired(T0));
        expect(earlier.map((r) => r.serial).sort()).to.deep.equal([serialOf(1), serialOf(2)]);
      });

      it('filters by exact SPIFFE ID, by prefix ending in /, by profile, by revocation and by validity', async () => {
        await insertCertificates([
          certificate(1, { spiffeId: 'spiffe://anonymizer.test/workers/blur' }),
          certificate(2, { spiffeId: 'spiffe://anonymizer.test/workers/blur/gpu' }),
          certificate(3, { spiffeId: 'spiffe://anonymizer.test/workers2/blur' }),
          certificate(4, { spiffeId: 'spiffe://anonymizer.test/worker', profile: 'operator' }),
          certificate(5, { spiffeId: 'spiffe://anonymizer.test/workers/export', revokedAt: at(30 * MINUTE_MS), revocationReason: 'keyCompromise' }),
          certificate(100, { spiffeId: 'spiffe://anonymizer.test/workers/late' }),
        ]);
        const serials = async (filter: CertificateFilter): Promise<string[]> =>
          (await store.transaction((tx) => tx.listCertificates(filter, 100, ''))).items.map((r) => r.serial);
        expect(await serials({ spiffeId: 'spiffe://anonymizer.test/workers/blur' })).to.deep.equal([serialOf(1)]);
        expect(await serials({ spiffeId: 'spiffe://anonymizer.test/workers/' })).to.deep.equal([serialOf(100), serialOf(5), serialOf(2), serialOf(1)]);
        expect(await serials({ profile: 'operator' })).to.deep.equal([serialOf(4)]);
        expect(await serials({ revoked: true })).to.deep.equal([serialOf(5)]);
        expect(await serials({ revoked: false, spiffeId: 'spiffe://anonymizer.test/workers/' })).to.deep.equal([serialOf(100), serialOf(2), serialOf(1)]);
        // At T0+10m: 1..5 are valid (issued T0+n m, valid from a minute before, for an hour); 100 not yet.
        expect(await serials({ validAt: at(10 * MINUTE_MS) })).to.deep.equal([serialOf(5), serialOf(4), serialOf(3), serialOf(2), serialOf(1)]);
        // At T0+31m, 5 is revoked; notAfter is inclusive (RFC 5280): 1 is valid at exactly its notAfter.
        expect(await serials({ validAt: at(31 * MINUTE_MS) })).to.not.include(serialOf(5));
        expect(await serials({ validAt: certificate(1).notAfter })).to.include(serialOf(1));
        expect(await serials({ validAt: new Date(certificate(1).notAfter.getTime() + 1) })).to.not.include(serialOf(1));
        expect(await serials({ spiffeId: 'spiffe://anonymizer.test/workers/', profile: 'operator' })).to.deep.equal([]);
      });

      it('pages newest first with opaque tokens: every certificate once, ties on issuedAt ordered by serial', async () => {
        // 25 certificates, several issued in the same millisecond.
        const records = Array.from({ length: 25 }, (_, i) => certificate(i + 1, { issuedAt: at(Math.floor(i / 4) * MINUTE_MS) }));
        await insertCertificates(records);
        const pages = await listAll({}, 10);
        expect(pages.map((page) => page.length)).to.deep.equal([10, 10, 5]);
        const expected = [...records]
          .sort((a, b) => b.issuedAt.getTime() - a.issuedAt.getTime() || (a.serial < b.serial ? 1 : -1))
          .map((r) => r.serial);
        expect(pages.flat()).to.deep.equal(expected);
        const exact = await listAll({}, 25);
        expect(exact.map((page) => page.length)).to.deep.equal([25]);
      });

      it('page sizes: 0 means the default, above the cap is lowered to it, negative is refused', async () => {
        const records = Array.from({ length: MAX_PAGE_SIZE + 5 }, (_, i) => certificate(i + 1));
        await insertCertificates(records);
        const capped = await store.transaction((tx) => tx.listCertificates({}, MAX_PAGE_SIZE * 10, ''));
        expect(capped.items).to.have.length(MAX_PAGE_SIZE);
        expect(capped.nextPageToken).to.not.equal('');
        const defaulted = await store.transaction((tx) => tx.listCertificates({}, 0, ''));
        expect(defaulted.items.length).to.be.within(1, MAX_PAGE_SIZE);
        await expectError(store.transaction((tx) => tx.listCertificates({}, -1, '')), 'invalid', 'store.page_size');
        await expectError(store.transaction((tx) => tx.listCertificates({}, 1.5, '')), 'invalid', 'store.page_size');
      });

      it('refuses a malformed page token and one made for another filter', async () => {
        await insertCertificates([certificate(1), certificate(2), certificate(3)]);
        const page = await store.transaction((tx) => tx.listCertificates({ spiffeId: 'spiffe://anonymizer.test/workers/' }, 1, ''));
        expect(page.nextPageToken).to.match(/^[A-Za-z0-9_-]+$/);
        await expectError(store.transaction((tx) => tx.listCertificates({}, 1, page.nextPageToken)), 'invalid', 'store.page_token');
        await expectError(store.transaction((tx) => tx.listCertificates({}, 1, 'not a token!')), 'invalid', 'store.page_token');
        await expectError(store.transaction((tx) => tx.listCertificates({}, 1, Buffer.from('{"v":1}').toString('base64url'))), 'invalid', 'store.page_token');
        await expectError(store.transaction((tx) => tx.queryAudit({}, 1, page.nextPageToken)), 'invalid', 'store.page_token');
      });
    });

    describe('join tokens', () => {
      it('round-trips a token by hash; an unknown hash is null; a duplicate id or hash is a conflict', async () => {
        const token = joinToken(1);
        await store.transaction((tx) => tx.insertJoinToken(token));
        const [got, missing] = await store.transaction(async (tx) => [await tx.getJoinTokenByHash(token.hash), await tx.getJoinTokenByHash(sha256Hex('other'))]);
        expect(got).to.deep.equal(token);
        expect(missing).to.be.null;
        await expectError(store.transaction((tx) => tx.insertJoinToken(joinToken(2, { id: token.id }))), 'conflict', 'store.join_token_exists');
        await expectError(store.transaction((tx) => tx.insertJoinToken(joinToken(3, { hash: token.hash }))), 'conflict', 'store.join_token_exists');
      });

      it('is single-use: the second redemption returns false and the first stands', async () => {
        await insertCertificates([certificate(1), certificate(2)]);
        await store.transaction((tx) => tx.insertJoinToken(joinToken(1)));
        const first = await store.transaction((tx) => tx.redeemJoinToken(joinToken(1).id, at(MINUTE_MS), serialOf(1)));
        const second = await store.transaction((tx) => tx.redeemJoinToken(joinToken(1).id, at(2 * MINUTE_MS), serialOf(2)));
        const unknown = await store.transaction((tx) => tx.redeemJoinToken('jt-unknown', at(MINUTE_MS), serialOf(2)));
        expect([first, second, unknown]).to.deep.equal([true, false, false]);
        const record = await store.transaction((tx) => tx.getJoinTokenByHash(joinToken(1).hash));
        expect(record?.usedAt).to.deep.equal(at(MINUTE_MS));
        expect(record?.usedForSerial).to.equal(serialOf(1));
      });

      it('200 concurrent transactions redeeming one token: exactly one wins', async () => {
        await store.transaction((tx) => tx.insertJoinToken(joinToken(1)));
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            store.transaction(async (tx) => {
              const token = await tx.getJoinTokenByHash(joinToken(1).hash);
              if (token === null || token.usedAt !== null) return false;
              return tx.redeemJoinToken(token.id, at(MINUTE_MS), serialOf(i + 1));
            }),
          ),
        );
        expect(results.filter((won) => won)).to.have.length(1);
        const winner = results.indexOf(true);
        const record = await store.transaction((tx) => tx.getJoinTokenByHash(joinToken(1).hash));
        expect(record?.usedForSerial).to.equal(serialOf(winner + 1));
      });

      it('counts outstanding tokens: unused and not expired', async () => {
        await store.transaction(async (tx) => {
          await tx.insertJoinToken(joinToken(1));
          await tx.insertJoinToken(joinToken(2, { expiresAt: at(5 * MINUTE_MS) }));
          await tx.insertJoinToken(joinToken(3));
          await tx.redeemJoinToken(joinToken(3).id, at(MINUTE_MS), serialOf(3));
        });
        expect(await store.transaction((tx) => tx.countOutstandingJoinTokens(at(MINUTE_MS)))).to.equal(2);
        expect(await store.transaction((tx) => tx.countOutstandingJoinTokens(at(5 * MINUTE_MS)))).to.equal(1);
        expect(await store.transaction((tx) => tx.countOutstandingJoinTokens(at(HOUR_MS)))).to.equal(0);
      });
    });

    describe('transactions', () => {
      it('a transaction that throws leaves nothing behind, and its error reaches the caller unchanged', async () => {
        const failure = new Error('policy said no');
        const caught = await store
          .transaction(async (tx) => {
            await tx.insertCertificate(certificate(1));
            await tx.insertJoinToken(joinToken(1));
            await tx.insertAuditEntry(chain(1)[0]!);
            await tx.nextCounter('crl_number');
            throw failure;
          })
          .catch((error: unknown) => error);
        expect(caught).to.equal(failure);
        const state = await store.transaction(async (tx) => ({
          certificate: await tx.getCertificate(serialOf(1)),
          token: await tx.getJoinTokenByHash(joinToken(1).hash),
          audit: await tx.lastAuditEntry(),
          counter: await tx.nextCounter('crl_number'),
        }));
        expect(state).to.deep.equal({ certificate: null, token: null, audit: null, counter: 1n });
      });

      it('concurrent transactions: one that throws undoes only its own changes', async () => {
        const outcomes = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            store.transaction(async (tx) => {
              await tx.insertCertificate(certificate(i + 1));
              if (i % 5 === 2) throw new Error(`refused ${i}`);
              return i;
            }),
          ),
        );
        expect(outcomes.filter((o) => o.status === 'rejected')).to.have.length(4);
        const listed = await store.transaction((tx) => tx.listCertificates({}, 100, ''));
        expect(listed.items.map((r) => r.serial).sort()).to.deep.equal(
          Array.from({ length: 20 }, (_, i) => i)
            .filter((i) => i % 5 !== 2)
            .map((i) => serialOf(i + 1))
            .sort(),
        );
      });

      it('transactions see each other in call order', async () => {
        const seen = await Promise.all(Array.from({ length: 10 }, () => store.transaction((tx) => tx.nextCounter('order'))));
        expect(seen).to.deep.equal(Array.from({ length: 10 }, (_, i) => BigInt(i + 1)));
      });

      it('refuses a transaction object used after its transaction ended', async () => {
        const leaked = await store.transaction((tx) => Promise.resolve(tx));
        await expectError(leaked.getCertificate(serialOf(1)), 'internal', 'store.tx_ended');
      });

      it('refuses a transaction started inside another (it would wait for itself)', async () => {
        await expectError(store.transaction(() => store.transaction((tx) => tx.lastAuditEntry())), 'internal', 'store.nested_transaction');
      });

      it('fails every call after close with unavailable store.closed', async () => {
        await store.close();
        await expectError(store.transaction((tx) => tx.lastAuditEntry()), 'unavailable', 'store.closed');
        await store.close();
      });
    });

    describe('audit entries', () => {
      it('appends a chain and returns the last entry with every field intact; empty log → null', async () => {
        expect(await store.transaction((tx) => tx.lastAuditEntry())).to.be.null;
        const entries = chain(5);
        await appendEntries(entries);
        const last = await store.transaction((tx) => tx.lastAuditEntry());
        expect(last).to.deep.equal(entries[4]);
      });

      it('refuses a taken seq (conflict store.audit_seq) and an entry that does not chain to the head', async () => {
        const entries = chain(3);
        await appendEntries(entries);
        const rival = chainEntry(entries[1]!, auditInput(50));
        await expectError(appendEntries([rival]), 'conflict', 'store.audit_seq');
        const stale = { ...chainEntry(entries[2]!, auditInput(51)), prevHash: entries[1]!.hash };
        await expectError(appendEntries([stale]), 'conflict', 'store.audit_chain');
        const gap = chainEntry({ ...entries[2]!, seq: 10 }, auditInput(52));
        await expectError(appendEntries([gap]), 'internal', 'store.audit_gap');
        expect((await store.transaction((tx) => tx.lastAuditEntry()))?.seq).to.equal(3);
      });

      it('queries with filters, newest first, in pages', async () => {
        const entries = chain(30);
        await appendEntries(entries);
        const query = async (filter: AuditFilter): Promise<number[]> => {
          const seqs: number[] = [];
          let token = '';
          do {
            const page = await store.transaction((tx) => tx.queryAudit(filter, 4, token));
            expect(page.items.length).to.be.at.most(4);
            seqs.push(...page.items.map((e) => e.seq));
            token = page.nextPageToken;
          } while (token !== '');
          return seqs;
        };
        const expect30 = (keep: (e: AuditEntry) => boolean): number[] => entries.filter(keep).map((e) => e.seq).reverse();
        expect(await query({})).to.deep.equal(expect30(() => true));
        expect(await query({ actor: 'anonymous' })).to.deep.equal(expect30((e) => e.actor === 'anonymous'));
        expect(await query({ action: 'Revoke', outcome: 'denied' })).to.deep.equal(expect30((e) => e.action === 'Revoke' && e.outcome === 'denied'));
        expect(await query({ subject: 'spiffe://anonymizer.test/workers/w2' })).to.deep.equal(expect30((e) => e.subject.endsWith('/w2')));
        expect(await query({ since: at(10_000), until: at(20_000) })).to.deep.equal(expect30((e) => e.seq >= 10 && e.seq < 20));
        expect(await query({ actor: 'nobody' })).to.deep.equal([]);
        const full = await store.transaction((tx) => tx.queryAudit({ subject: 'spiffe://anonymizer.test/workers/w2' }, 100, ''));
        expect(full.items[0]).to.deep.equal(entries.filter((e) => e.subject.endsWith('/w2')).at(-1));
        expect(full.nextPageToken).to.equal('');
      });
    });

    describe('audit checkpoints', () => {
      it('stores checkpoints of existing entries in increasing seq; the last one is returned', async () => {
        const entries = chain(6);
        await appendEntries(entries);
        expect(await store.transaction((tx) => tx.lastAuditCheckpoint())).to.be.null;
        await store.transaction((tx) => tx.insertAuditCheckpoint(checkpointOf(entries[2]!)));
        await store.transaction((tx) => tx.insertAuditCheckpoint(checkpointOf(entries[5]!, at(MINUTE_MS))));
        expect(await store.transaction((tx) => tx.lastAuditCheckpoint())).to.deep.equal(checkpointOf(entries[5]!, at(MINUTE_MS)));
      });

      it('refuses a checkpoint of a missing entry, of a wrong hash, or not after the last one', async () => {
        const entries = chain(4);
        await appendEntries(entries);
        await store.transaction((tx) => tx.insertAuditCheckpoint(checkpointOf(entries[2]!)));
        await expectError(store.transaction((tx) => tx.insertAuditCheckpoint({ ...checkpointOf(entries[3]!), seq: 9 })), 'conflict', 'store.audit_checkpoint');
        await expectError(store.transaction((tx) => tx.insertAuditCheckpoint({ ...checkpointOf(entries[3]!), hash: entries[2]!.hash })), 'conflict', 'store.audit_checkpoint');
        await expectError(store.transaction((tx) => tx.insertAuditCheckpoint(checkpointOf(entries[2]!))), 'conflict', 'store.audit_checkpoint');
        await expectError(store.transaction((tx) => tx.insertAuditCheckpoint(checkpointOf(entries[1]!))), 'conflict', 'store.audit_checkpoint');
        expect((await store.transaction((tx) => tx.lastAuditCheckpoint()))?.seq).to.equal(3);
      });
    });

    describe('rotations', () => {
      const rotation = (n: number): RotationRecord => ({ id: `rot-${n.toString(16).padStart(32, '0')}`, selector: 'spiffe://anonymizer.test/workers/**', reason: 'superseded', requestedBy: 'spiffe://anonymizer.test/ops/alice', requestedAt: T0 });
      const target = (r: RotationRecord, n: number, overrides: Partial<RotationTargetRecord> = {}): RotationTargetRecord => ({
        rotationId: r.id,
        serial: serialOf(n),
        spiffeId: `spiffe://anonymizer.test/workers/w${n}`,
        notAfter: at(HOUR_MS),
        connected: n % 2 === 0,
        status: 'pending',
        newSerial: null,
        finishedAt: null,
        ...overrides,
      });

      it('round-trips a rotation and its targets; unknown ids are null or empty; duplicates conflict', async () => {
        const r = rotation(1);
        await store.transaction(async (tx) => {
          await tx.insertRotation(r);
          for (const n of [3, 1, 2]) await tx.insertRotationTarget(target(r, n));
        });
        expect(await store.transaction((tx) => tx.getRotation(r.id))).to.deep.equal(r);
        expect(await store.transaction((tx) => tx.getRotation(rotation(2).id))).to.equal(null);
        const targets = await store.transaction((tx) => tx.listRotationTargets(r.id));
        expect(targets).to.deep.equal([1, 2, 3].map((n) => target(r, n)));
        expect(await store.transaction((tx) => tx.listRotationTargets(rotation(2).id))).to.deep.equal([]);
        await expectError(store.transaction((tx) => tx.insertRotation(r)), 'conflict', 'store.rotation_exists');
        await expectError(store.transaction((tx) => tx.insertRotationTarget(target(r, 1))), 'conflict', 'store.rotation_target_exists');
        await expectError(store.transaction((tx) => tx.insertRotationTarget(target(rotation(9), 1))), 'internal', 'store.invalid_record');
        await expectError(store.transaction((tx) => tx.insertRotation({ ...rotation(3), id: 'rot-nothex' })), 'internal', 'store.invalid_record');
        await expectError(store.transaction((tx) => tx.insertRotationTarget(target(r, 7, { status: 'rotated' }))), 'internal', 'store.invalid_record');
      });

      it('finds pending targets by old serial across rotations and finishes each once', async () => {
        const [r1, r2] = [rotation(1), rotation(2)];
        await store.transaction(async (tx) => {
          await tx.insertRotation(r1);
          await tx.insertRotation(r2);
          await tx.insertRotationTarget(target(r1, 5));
          await tx.insertRotationTarget(target(r2, 5));
          await tx.insertRotationTarget(target(r2, 6));
        });
        expect((await store.transaction((tx) => tx.pendingRotationTargets(serialOf(5)))).map((t) => t.rotationId)).to.deep.equal([r1.id, r2.id]);
        expect(await store.transaction((tx) => tx.finishRotationTarget(r1.id, serialOf(5), 'rotated', serialOf(50), at(MINUTE_MS)))).to.equal(true);
        expect(await store.transaction((tx) => tx.finishRotationTarget(r1.id, serialOf(5), 'revoked', null, at(2 * MINUTE_MS))), 'second finish').to.equal(false);
        expect(await store.transaction((tx) => tx.finishRotationTarget(r2.id, serialOf(6), 'revoked', null, at(MINUTE_MS)))).to.equal(true);
        expect(await store.transaction((tx) => tx.finishRotationTarget(r2.id, serialOf(99), 'revoked', null, at(MINUTE_MS))), 'unknown target').to.equal(false);
        expect((await store.transaction((tx) => tx.pendingRotationTargets(serialOf(5)))).map((t) => t.rotationId)).to.deep.equal([r2.id]);
        const [first] = await store.transaction((tx) => tx.listRotationTargets(r1.id));
        expect(first).to.deep.equal(target(r1, 5, { status: 'rotated', newSerial: serialOf(50), finishedAt: at(MINUTE_MS) }));
        await expectError(store.transaction((tx) => tx.finishRotationTarget(r2.id, serialOf(5), 'rotated', null, at(MINUTE_MS))), 'internal', 'store.invalid_record');
      });
    });

    describe('counters', () => {
      it('counts from 1, per name, monotonically, also under concurrency', async () => {
        const first = await store.transaction(async (tx) => [await tx.nextCounter('crl_number'), await tx.nextCounter('crl_number'), await tx.nextCounter('other')]);
        expect(first).to.deep.equal([1n, 2n, 1n]);
        const many = await Promise.all(Array.from({ length: 50 }, () => store.transaction((tx) => tx.nextCounter('crl_number'))));
        expect([...many].sort((a, b) => (a < b ? -1 : 1))).to.deep.equal(Array.from({ length: 50 }, (_, i) => BigInt(i + 3)));
        await expectError(store.transaction((tx) => tx.nextCounter('Bad Name')), 'internal', 'store.invalid_record');
      });
    });
  });
}
