import { expect } from 'chai';
import { createHash } from 'node:crypto';
import {
  AuditCheckpointer,
  AuditLog,
  DEFAULT_CHECKPOINT_EVERY_ENTRIES,
  DEFAULT_CHECKPOINT_EVERY_MS,
  checkpointMessage,
  type IntervalTimers,
} from '../../../src/audit/index.js';
import { ManualClock, SoftwareSigner, spkiOf, verifySignature, type Logger, type Signer } from '../../../src/core/index.js';
import { SqliteStore } from '../../../src/store/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { T0, auditInput } from '../store/store-fixtures.js';

const MINUTE_MS = 60_000;

/** Timers that only run when the test says so. */
class FakeTimers implements IntervalTimers {
  readonly active = new Map<number, { callback: () => void; ms: number }>();
  #next = 0;

  set(callback: () => void, ms: number): unknown {
    this.active.set(++this.#next, { callback, ms });
    return this.#next;
  }

  clear(handle: unknown): void {
    this.active.delete(handle as number);
  }

  fire(): void {
    for (const { callback } of this.active.values()) callback();
  }
}

describe('AuditCheckpointer', () => {
  let store: SqliteStore;
  let clock: ManualClock;
  let signer: SoftwareSigner;
  const log = new AuditLog();

  before(async () => {
    signer = await SoftwareSigner.generate('P-256', 'software:audit');
  });

  beforeEach(async () => {
    store = await SqliteStore.open(':memory:');
    clock = new ManualClock(T0);
  });

  afterEach(async () => {
    await store.close();
  });

  async function append(count: number): Promise<void> {
    for (let i = 0; i < count; i++) await store.transaction((tx) => log.append(tx, auditInput(1, { time: clock.now() })));
  }

  const lastSeq = async (): Promise<number | undefined> => (await store.transaction((tx) => tx.lastAuditCheckpoint()))?.seq;

  it('defaults: every 1,000 entries or 60 s', () => {
    const checkpointer = new AuditCheckpointer(store, signer, clock);
    expect([checkpointer.everyEntries, checkpointer.everyMs]).to.deep.equal([DEFAULT_CHECKPOINT_EVERY_ENTRIES, DEFAULT_CHECKPOINT_EVERY_MS]);
    expect([DEFAULT_CHECKPOINT_EVERY_ENTRIES, DEFAULT_CHECKPOINT_EVERY_MS]).to.deep.equal([1000, 60_000]);
    expect(() => new AuditCheckpointer(store, signer, clock, { everyEntries: 0 })).to.throw(RangeError);
    expect(() => new AuditCheckpointer(store, signer, clock, { everyMs: 1.5 })).to.throw(RangeError);
  });

  it('signs nothing for an empty log', async () => {
    const checkpointer = new AuditCheckpointer(store, signer, clock);
    expect(await checkpointer.tick()).to.be.null;
    expect(await checkpointer.flush()).to.be.null;
    expect(await lastSeq()).to.be.undefined;
  });

  it('the first checkpoint of a log is signed at once; it is a verifiable signature over the head', async () => {
    await append(3);
    const checkpointer = new AuditCheckpointer(store, signer, clock);
    const checkpoint = await checkpointer.tick(clock.now());
    const head = await store.transaction((tx) => tx.lastAuditEntry());
    expect(checkpoint).to.deep.include({ seq: 3, hash: head?.hash, algorithm: 'ES256', time: T0 });
    expect(checkpoint?.keySpkiSha256).to.equal(createHash('sha256').update(spkiOf(signer.publicKey)).digest('hex'));
    const signature = Buffer.from(checkpoint!.signature, 'base64');
    expect(verifySignature('ES256', signer.publicKey, checkpointMessage(3, head!.hash, T0), signature)).to.be.true;
    expect(await store.transaction((tx) => tx.lastAuditCheckpoint())).to.deep.equal(checkpoint);
  });

  it('by count: signs once everyEntries entries follow the last checkpoint', async () => {
    const checkpointer = new AuditCheckpointer(store, signer, clock, { everyEntries: 5, everyMs: 10 * MINUTE_MS });
    await append(1);
    expect((await checkpointer.tick())?.seq).to.equal(1);
    await append(4);
    expect(await checkpointer.tick(), '4 new entries').to.be.null;
    await append(1);
    expect((await checkpointer.tick())?.seq, '5 new entries').to.equal(6);
    expect(await checkpointer.tick(), 'nothing new').to.be.null;
    await append(12);
    expect((await checkpointer.tick())?.seq, 'the whole head, not just 5 more').to.equal(18);
  });

  it('by time: signs new entries once the last checkpoint is everyMs old; nothing when nothing is new', async () => {
    const checkpointer = new AuditCheckpointer(store, signer, clock, { everyEntries: 1000, everyMs: MINUTE_MS });
    await append(1);
    expect((await checkpointer.tick())?.seq).to.equal(1);
    clock.advance(5 * MINUTE_MS);
    expect(await checkpointer.tick(), 'time passed, no new entries').to.be.null;
    await append(2);
    clock.set(T0.getTime() + 10 * MINUTE_MS);
    const byTime = await checkpointer.tick();
    expect(byTime?.seq).to.equal(3);
    expect(byTime?.time).to.deep.equal(clock.now());
    await append(1);
    clock.advance(MINUTE_MS - 1);
    expect(await checkpointer.tick(), 'one ms early').to.be.null;
    clock.advance(1);
    expect((await checkpointer.tick())?.seq).to.equal(4);
  });

  it('flush signs any new entry whatever the thresholds', async () => {
    const checkpointer = new AuditCheckpointer(store, signer, clock, { everyEntries: 1000, everyMs: 60 * MINUTE_MS });
    await append(1);
    await checkpointer.tick();
    await append(1);
    expect(await checkpointer.tick()).to.be.null;
    expect((await checkpointer.flush())?.seq).to.equal(2);
    expect(await checkpointer.flush()).to.be.null;
  });

  it('signs outside any transaction, and concurrent ticks sign once', async () => {
    let signings = 0;
    const probing: Signer = {
      algorithm: signer.algorithm,
      keyType: signer.keyType,
      publicKey: signer.publicKey,
      description: 'probe',
      sign: async (data) => {
        signings++;
        // Inside a transaction this would be refused as nested (or wait forever).
        await store.transaction((tx) => tx.lastAuditEntry());
        return signer.sign(data);
      },
    };
    await append(2);
    const checkpointer = new AuditCheckpointer(store, probing, clock);
    const results = await Promise.all([checkpointer.tick(), checkpointer.tick(), checkpointer.tick()]);
    expect(results.map((r) => r?.seq ?? null)).to.deep.equal([2, null, null]);
    expect(signings).to.equal(1);
  });

  it('refuses a signature that does not verify and stores nothing', async () => {
    const broken: Signer = { algorithm: signer.algorithm, keyType: signer.keyType, publicKey: signer.publicKey, description: 'broken', sign: () => Promise.resolve(new Uint8Array(64)) };
    await append(1);
    const error = await catchBrokerError(new AuditCheckpointer(store, broken, clock).tick());
    expect(error.code).to.equal('audit.checkpoint_signature');
    expect(await lastSeq()).to.be.undefined;
  });

  it('start ticks every pollMs on the timers; stop clears them; failures are logged, not thrown', async () => {
    const timers = new FakeTimers();
    const logged: string[] = [];
    const logger: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (_fields, message) => logged.push(message) };
    const failing: Signer = { algorithm: signer.algorithm, keyType: signer.keyType, publicKey: signer.publicKey, description: 'down', sign: () => Promise.reject(new Error('HSM down')) };
    await append(1);
    const checkpointer = new AuditCheckpointer(store, failing, clock, { pollMs: 250, timers, logger });
    checkpointer.start();
    checkpointer.start();
    expect([...timers.active.values()].map((t) => t.ms)).to.deep.equal([250]);
    expect(checkpointer.running).to.be.true;
    timers.fire();
    await checkpointer.tick().catch(() => null); // waits for the fired tick
    expect(logged).to.deep.equal(['audit checkpoint failed; will retry']);
    checkpointer.stop();
    expect(timers.active.size).to.equal(0);
    expect(checkpointer.running).to.be.false;

    const working = new AuditCheckpointer(store, signer, clock, { timers });
    working.start();
    timers.fire();
    expect(await working.tick()).to.be.null; // the fired tick signed; this one finds nothing new
    expect(await lastSeq()).to.equal(1);
    working.stop();
  });
});
