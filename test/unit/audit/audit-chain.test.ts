import { expect } from 'chai';
import { createHash } from 'node:crypto';
import {
  AUDIT_HASH_FORMAT,
  GENESIS_HASH,
  chainEntry,
  checkpointMessage,
  hashAuditEntry,
  hashPreimage,
} from '../../../src/audit/index.js';
import type { AuditEntryInput } from '../../../src/store/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';

const ZEROS = '0'.repeat(64);

/** Fixed inputs; details deliberately not in key order. */
const FIRST: AuditEntryInput = {
  time: new Date('2026-03-01T09:00:00.000Z'),
  requestId: 'req-1',
  actor: 'spiffe://anonymizer.test/operators/alice',
  action: 'Issue',
  outcome: 'allowed',
  subject: 'spiffe://anonymizer.test/workers/blur',
  reason: '',
  details: { ttlSeconds: 3600, serial: '7f01', sans: ['blur.anonymizer.test', '10.0.0.7'], renewal: false },
};
const SECOND: AuditEntryInput = {
  time: new Date('2026-03-01T09:00:01.500Z'),
  requestId: 'req-2',
  actor: 'anonymous',
  action: 'Enroll',
  outcome: 'denied',
  subject: 'jt0001',
  reason: 'join_token.used',
  details: {},
};

// The bytes of the format, written out by hand (module comment of audit-chain.ts), and their
// SHA-256 computed outside credbroker (sha256sum) once.
const FIRST_PREIMAGE =
  'credbroker-audit-v1\n' +
  `[1,"${ZEROS}",1772355600000,"req-1","spiffe://anonymizer.test/operators/alice","Issue","allowed","spiffe://anonymizer.test/workers/blur","",` +
  '{"renewal":false,"sans":["blur.anonymizer.test","10.0.0.7"],"serial":"7f01","ttlSeconds":3600}]';
const FIRST_HASH = '5ba8f25ee227355ca1c8e4e91cfe734775c8b9061045ae8b068933836cd62846';
const SECOND_PREIMAGE = `credbroker-audit-v1\n[2,"${FIRST_HASH}",1772355601500,"req-2","anonymous","Enroll","denied","jt0001","join_token.used",{}]`;
const SECOND_HASH = 'b54b30eb14064a2fdbddda1463af9e5e4313c1aa9ff499b8e08613b233f5e6da';

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

describe('audit chain', () => {
  it('GENESIS_HASH is 64 zeros and the format name is versioned', () => {
    expect(GENESIS_HASH).to.equal(ZEROS);
    expect(AUDIT_HASH_FORMAT).to.equal('credbroker-audit-v1');
  });

  it('known answer: the first entry\'s preimage and hash', () => {
    expect(sha256(FIRST_PREIMAGE)).to.equal(FIRST_HASH);
    const entry = chainEntry(null, FIRST);
    expect(hashPreimage(entry)).to.equal(FIRST_PREIMAGE);
    expect(entry).to.deep.include({ seq: 1, prevHash: ZEROS, hash: FIRST_HASH });
  });

  it('known answer: the second entry chains on the first', () => {
    expect(sha256(SECOND_PREIMAGE)).to.equal(SECOND_HASH);
    const second = chainEntry(chainEntry(null, FIRST), SECOND);
    expect(second).to.deep.include({ seq: 2, prevHash: FIRST_HASH, hash: SECOND_HASH });
    expect(hashAuditEntry(second)).to.equal(SECOND_HASH);
  });

  it('the hash does not depend on the order of detail keys', () => {
    const reordered = { ...FIRST, details: { renewal: false, serial: '7f01', sans: ['blur.anonymizer.test', '10.0.0.7'], ttlSeconds: 3600 } };
    expect(chainEntry(null, reordered).hash).to.equal(FIRST_HASH);
  });

  it('every field is covered: changing any one changes the hash', () => {
    const base = chainEntry(null, FIRST);
    const variants: Record<string, Partial<typeof base>> = {
      seq: { seq: 2 },
      prevHash: { prevHash: 'f'.repeat(64) },
      time: { time: new Date(FIRST.time.getTime() + 1) },
      requestId: { requestId: 'req-X' },
      actor: { actor: 'anonymous' },
      action: { action: 'Renew' },
      outcome: { outcome: 'failed' },
      subject: { subject: 'x' },
      reason: { reason: 'x' },
      details: { details: { ...FIRST.details, ttlSeconds: 3601 } },
      detailArrayOrder: { details: { ...FIRST.details, sans: ['10.0.0.7', 'blur.anonymizer.test'] } },
      detailType: { details: { ...FIRST.details, ttlSeconds: '3600' } },
    };
    for (const [name, change] of Object.entries(variants)) {
      expect(hashAuditEntry({ ...base, ...change }), name).to.not.equal(FIRST_HASH);
    }
  });

  it('returns a frozen entry with copied details', () => {
    const details = { serial: '7f01', sans: ['a'] };
    const entry = chainEntry(null, { ...FIRST, details });
    details.serial = 'changed';
    details.sans.push('b');
    expect(entry.details).to.deep.equal({ sans: ['a'], serial: '7f01' });
    expect(Object.isFrozen(entry) && Object.isFrozen(entry.details) && Object.isFrozen(entry.details.sans)).to.be.true;
  });

  describe('refuses malformed entries (internal audit.invalid_entry)', () => {
    const cases: [string, Partial<Record<keyof AuditEntryInput, unknown>>][] = [
      ['an invalid time', { time: new Date(Number.NaN) }],
      ['an empty actor', { actor: '' }],
      ['an empty request id', { requestId: '' }],
      ['an unknown outcome', { outcome: 'maybe' }],
      ['a nested object in details', { details: { nested: { a: 1 } } }],
      ['a non-finite number', { details: { ttl: Number.POSITIVE_INFINITY } }],
      ['NaN', { details: { ttl: Number.NaN } }],
      ['an integer-like key (JS reorders those)', { details: { '10': 'x' } }],
      ['__proto__ as a key', { details: JSON.parse('{"__proto__":"x"}') as unknown }],
      ['a non-string array element', { details: { sans: ['a', 1] } }],
      ['a lone surrogate (cannot round-trip through UTF-8)', { subject: 'bad \ud800 text' }],
      ['an overlong string', { reason: 'x'.repeat(2049) }],
      ['details that are not an object', { details: ['a'] }],
      ['undefined detail value', { details: { a: undefined } }],
    ];
    for (const [name, change] of cases) {
      it(name, async () => {
        const error = await catchBrokerError(() => chainEntry(null, { ...FIRST, ...change } as AuditEntryInput));
        expect([error.kind, error.code]).to.deep.equal(['internal', 'audit.invalid_entry']);
        expect(error.publicMessage).to.equal('internal error');
      });
    }

    it('a previous entry without a valid hash', async () => {
      const error = await catchBrokerError(() => chainEntry({ ...chainEntry(null, FIRST), hash: 'nope' }, SECOND));
      expect(error.code).to.equal('audit.invalid_entry');
    });
  });

  it('checkpoint message: exact bytes with its own format prefix', () => {
    const message = checkpointMessage(2, FIRST_HASH, new Date('2026-03-01T09:01:00.000Z'));
    expect(Buffer.from(message).toString('utf8')).to.equal(`credbroker-audit-checkpoint-v1\n2\n${FIRST_HASH}\n1772355660000`);
    expect(() => checkpointMessage(0, FIRST_HASH, new Date())).to.throw();
    expect(() => checkpointMessage(1, 'ABC', new Date())).to.throw();
    expect(() => checkpointMessage(1, FIRST_HASH, new Date(Number.NaN))).to.throw();
  });
});
