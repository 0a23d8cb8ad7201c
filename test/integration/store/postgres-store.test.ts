/**
 * The store contract on a real PostgreSQL (test/helpers/postgres.ts starts one for this file),
 * and what only the PostgreSQL store has: its migrations under concurrent opens, the refusal of
 * foreign schemas, the error mapping, and two stores (two brokers) on one database.
 */
import { expect } from 'chai';
import pg from 'pg';
import { chainEntry } from '../../../src/audit/index.js';
import { ManualClock, Secret } from '../../../src/core/index.js';
import { POSTGRES_SCHEMA_VERSION, PostgresStore, mapPostgresError, type Store } from '../../../src/store/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { startTestPostgres, type TestPostgres } from '../../helpers/postgres.js';
import { storeContract } from '../../unit/store/store-contract.js';
import { MINUTE_MS, T0, at, auditInput, certificate, chain, joinToken, serialOf } from '../../unit/store/store-fixtures.js';

let server: TestPostgres;

async function freshStore(): Promise<PostgresStore> {
  return PostgresStore.open(server.connection(await server.createDatabase('contract')), { clock: new ManualClock(T0) });
}

describe('PostgreSQL store (a cluster made for this file)', function () {
  before(async function () {
    this.timeout(120_000);
    server = await startTestPostgres();
  });

  after(() => {
    (server as TestPostgres | undefined)?.stop();
  });

  storeContract('PostgresStore', freshStore);

describe('PostgresStore', () => {
  /** Runs `sql` as the superuser on `database`, behind the store's back. */
  async function raw<T extends object>(database: string, sql: string): Promise<T[]> {
    const client = new pg.Client({ host: server.socketDir, port: server.port, user: server.user, database, password: server.password.reveal((v) => v) });
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  }

  it('records its migrations once, even when several brokers open a new database together', async () => {
    const database = await server.createDatabase('migrate');
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open(server.connection(database), { clock: new ManualClock(T0) })));
    try {
      const rows = await raw<{ version: number; applied_at: string }>(database, 'SELECT version, applied_at FROM credbroker_schema ORDER BY version');
      expect(rows.map((r) => [r.version, Number(r.applied_at)])).to.deep.equal(Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => [i + 1, T0.getTime()]));
    } finally {
      for (const store of stores) await store.close();
    }
  });

  it('refuses a database with tables of another program, a newer schema, or a different migration', async () => {
    const foreign = await server.createDatabase('foreign');
    await raw(foreign, 'CREATE TABLE invoices (id integer)');
    const notOurs = await catchBrokerError(PostgresStore.open(server.connection(foreign)));
    expect([notOurs.kind, notOurs.code]).to.deep.equal(['conflict', 'store.not_credbroker']);

    const newer = await server.createDatabase('newer');
    await (await PostgresStore.open(server.connection(newer))).close();
    await raw(newer, `INSERT INTO credbroker_schema VALUES (${POSTGRES_SCHEMA_VERSION + 1}, 'future', 0)`);
    expect((await catchBrokerError(PostgresStore.open(server.connection(newer)))).code).to.equal('store.schema_too_new');

    const other = await server.createDatabase('other');
    await (await PostgresStore.open(server.connection(other))).close();
    await raw(other, "UPDATE credbroker_schema SET name = 'not-ours' WHERE version = 1");
    expect((await catchBrokerError(PostgresStore.open(server.connection(other)))).code).to.equal('store.schema_mismatch');
  });

  it('refuses a wrong password and an unreachable server as unavailable store.open, without the password', async () => {
    const database = await server.createDatabase('login');
    const wrong = await catchBrokerError(PostgresStore.open({ ...server.connection(database), password: Secret.from('not-the-password') }));
    expect([wrong.kind, wrong.code]).to.deep.equal(['unavailable', 'store.open']);
    expect(wrong.publicMessage).to.contain('password authentication failed').and.not.contain('not-the-password');
    const nowhere = await catchBrokerError(PostgresStore.open({ ...server.connection(database), host: `${server.dir}/no-such-socket-dir` }, { connectTimeoutMs: 2_000 }));
    expect([nowhere.kind, nowhere.code]).to.deep.equal(['unavailable', 'store.open']);
  });

  it('keeps the audit tables append-only (conflict store.append_only), also against TRUNCATE', async () => {
    const database = await server.createDatabase('appendonly');
    const store = await PostgresStore.open(server.connection(database));
    try {
      await store.transaction(async (tx) => {
        for (const entry of chain(2)) await tx.insertAuditEntry(entry);
      });
      for (const sql of ["UPDATE audit_entries SET reason = 'x'", 'DELETE FROM audit_entries', 'TRUNCATE audit_entries CASCADE', 'TRUNCATE audit_checkpoints']) {
        const error = await raw(database, sql).then(
          () => null,
          (caught: unknown) => mapPostgresError(caught, { operation: sql }),
        );
        expect([error?.kind, error?.code], sql).to.deep.equal(['conflict', 'store.append_only']);
      }
      expect((await store.transaction((tx) => tx.lastAuditEntry()))?.seq).to.equal(2);
    } finally {
      await store.close();
    }
  });

  it('text PostgreSQL cannot hold (NUL) is internal store.invalid_record, and the transaction is undone', async () => {
    const store = await freshStore();
    try {
      const error = await catchBrokerError(
        store.transaction(async (tx) => {
          await tx.insertCertificate(certificate(1));
          await tx.insertJoinToken(joinToken(1, { createdBy: 'nul\u0000here' }));
        }),
      );
      expect([error.kind, error.code]).to.deep.equal(['internal', 'store.invalid_record']);
      expect(await store.transaction((tx) => tx.getCertificate(serialOf(1)))).to.equal(null);
    } finally {
      await store.close();
    }
  });

  describe('two stores on one database (two brokers)', () => {
    let database: string;
    let a: Store;
    let b: Store;

    beforeEach(async () => {
      database = await server.createDatabase('shared');
      a = await PostgresStore.open(server.connection(database));
      b = await PostgresStore.open(server.connection(database));
    });

    afterEach(async () => {
      await a.close();
      await b.close();
    });

    it('one join token redeemed by 400 transactions spread over both: exactly one wins', async () => {
      await a.transaction((tx) => tx.insertJoinToken(joinToken(1)));
      const results = await Promise.all(
        Array.from({ length: 400 }, (_, i) =>
          (i % 2 === 0 ? a : b).transaction(async (tx) => {
            const token = await tx.getJoinTokenByHash(joinToken(1).hash);
            if (token === null || token.usedAt !== null) return false;
            return tx.redeemJoinToken(token.id, at(MINUTE_MS), serialOf(i + 1));
          }),
        ),
      );
      expect(results.filter((won) => won)).to.have.length(1);
      const record = await b.transaction((tx) => tx.getJoinTokenByHash(joinToken(1).hash));
      expect(record?.usedForSerial).to.equal(serialOf(results.indexOf(true) + 1));
    });

    it('both append to one audit chain as the audit module does: no gap, no fork, every entry once', async () => {
      const appends = Array.from({ length: 300 }, (_, i) =>
        (i % 2 === 0 ? a : b).transaction(async (tx) => {
          const entry = chainEntry(await tx.lastAuditEntry(), auditInput(i + 1, { requestId: `req-${i}` }));
          await tx.insertAuditEntry(entry);
          return entry.requestId;
        }),
      );
      expect(new Set(await Promise.all(appends)).size).to.equal(300);
      const entries = await a.transaction(async (tx) => {
        const all = [];
        let token = '';
        do {
          const page = await tx.queryAudit({}, 1000, token);
          all.push(...page.items);
          token = page.nextPageToken;
        } while (token !== '');
        return all.reverse();
      });
      expect(entries.map((e) => e.seq)).to.deep.equal(Array.from({ length: 300 }, (_, i) => i + 1));
      for (const [index, entry] of entries.entries()) {
        expect(entry.prevHash, `entry ${entry.seq}`).to.equal(index === 0 ? '0'.repeat(64) : entries[index - 1]!.hash);
      }
      expect(new Set(entries.map((e) => e.requestId)).size).to.equal(300);
    });

    it('serials are unique across both, and counters count once across both', async () => {
      const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).transaction((tx) => tx.insertCertificate(certificate(1 + (i % 10))))));
      const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(refused).to.have.length(10);
      for (const failure of refused) expect((failure.reason as { code?: string }).code).to.equal('store.certificate_exists');
      const numbers = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).transaction((tx) => tx.nextCounter('crl_number'))));
      expect([...numbers].sort((x, y) => (x < y ? -1 : 1))).to.deep.equal(Array.from({ length: 100 }, (_, i) => BigInt(i + 1)));
    });

    it('a revocation committed by one is read by the other at once', async () => {
      await a.transaction((tx) => tx.insertCertificate(certificate(1)));
      await a.transaction((tx) => tx.revokeCertificate(serialOf(1), at(MINUTE_MS), 'keyCompromise'));
      const seen = await b.transaction((tx) => tx.listRevokedUnexpired(T0));
      expect(seen.map((c) => c.serial)).to.deep.equal([serialOf(1)]);
    });

    it('a broker stuck inside a transaction holds the others for at most the lock timeout (unavailable store.busy)', async () => {
      const impatient = await PostgresStore.open(server.connection(database), { lockTimeoutMs: 200 });
      let release!: () => void;
      let entered!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const inside = new Promise<void>((resolve) => (entered = resolve));
      const holder = a.transaction(async (tx) => {
        await tx.lastAuditEntry();
        entered();
        await held;
      });
      try {
        await inside;
        const error = await catchBrokerError(impatient.transaction((tx) => tx.lastAuditEntry()));
        expect([error.kind, error.code, error.retryable]).to.deep.equal(['unavailable', 'store.busy', true]);
      } finally {
        release();
        await holder;
        await impatient.close();
      }
      expect(await impatient.transaction((tx) => tx.lastAuditEntry()).catch((e: unknown) => (e as { code?: string }).code)).to.equal('store.closed');
    });
  });
});
});
