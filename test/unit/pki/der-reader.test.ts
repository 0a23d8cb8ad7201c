import { expect } from 'chai';
import {
  DerCursor,
  DerError,
  derDecodeBitString,
  derDecodeBoolean,
  derDecodeInteger,
  derDecodeOid,
  derDecodeTime,
  derInteger,
  derNamedBits,
  derOid,
  derTime,
} from '../../../src/pki/index.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s/g, ''), 'hex');

describe('pki/der-reader and der-writer', () => {
  it('reads nested TLVs and gives content and raw bytes', () => {
    const cursor = new DerCursor(hex('3006 0201 05 0401 ff'), 'test');
    const sequence = cursor.read(0x30, 'outer');
    cursor.end();
    expect(Buffer.from(sequence.raw).toString('hex')).to.equal('3006020105' + '0401ff');
    const inner = new DerCursor(sequence.content, 'inner');
    expect(derDecodeInteger(inner.read(0x02, 'n').content)).to.equal(5n);
    expect(inner.readOptional(0x01)).to.equal(undefined);
    expect(Buffer.from(inner.read(0x04, 'o').content).toString('hex')).to.equal('ff');
    expect(inner.done).to.equal(true);
  });

  const malformed: [string, string, RegExp][] = [
    ['indefinite length', '3080 0000', /indefinite/],
    ['non-minimal short length', '3081 05 0000000000', /non-minimal/],
    ['non-minimal long length', '3082 0005 0000000000', /non-minimal/],
    ['content past the end', '3005 0000', /past the end/],
    ['truncated length', '30', /truncated length/],
    ['multi-byte tag', '1f01 00', /multi-byte tags/],
    ['length too large', '3085 0100000000', /too large/],
  ];
  for (const [name, bytes, message] of malformed) {
    it(`refuses ${name}`, () => {
      expect(() => new DerCursor(hex(bytes), 'test').next()).to.throw(DerError, message);
    });
  }

  it('refuses trailing data and wrong tags with the field name', () => {
    const cursor = new DerCursor(hex('0500 0500'), 'thing');
    cursor.next();
    expect(() => { cursor.end(); }).to.throw(DerError, /trailing/);
    expect(() => new DerCursor(hex('0500'), 'thing').read(0x30, 'body')).to.throw(DerError, /thing: body has tag 0x5, expected 0x30/);
    expect(() => new DerCursor(hex(''), 'thing').read(0x30, 'body')).to.throw(DerError, /body is missing/);
  });

  it('round-trips object identifiers, and refuses non-minimal arcs', () => {
    for (const oid of ['1.2.840.10045.4.3.2', '2.5.29.37.0', '1.3.6.1.4.1.99999.1', '2.999.3', '0.0']) {
      expect(derDecodeOid(derOid(oid).subarray(2))).to.equal(oid);
    }
    expect(() => derDecodeOid(hex('2a8001'))).to.throw(DerError, /non-minimal/);
    expect(() => derDecodeOid(hex('2a86'))).to.throw(DerError, /truncated/);
    expect(() => derOid('1.2.x')).to.throw(RangeError);
  });

  it('integers: minimal two’s complement both ways', () => {
    for (const [value, encoded] of [[0n, '020100'], [127n, '02017f'], [128n, '02020080'], [256n, '02020100'], [(1n << 159n) - 1n, `02147f${'ff'.repeat(19)}`]] as const) {
      expect(derInteger(value).toString('hex')).to.equal(encoded);
      expect(derDecodeInteger(hex(encoded).subarray(2))).to.equal(value);
    }
    expect(derDecodeInteger(hex('ff'))).to.equal(-1n);
    expect(() => derDecodeInteger(hex('0001'))).to.throw(DerError, /non-minimal/);
    expect(() => derDecodeInteger(hex('ff80'))).to.throw(DerError, /non-minimal/);
    expect(() => derDecodeInteger(hex(''))).to.throw(DerError, /empty/);
  });

  it('booleans and bit strings are DER-strict; named bits drop trailing zeros', () => {
    expect(derDecodeBoolean(hex('ff'))).to.equal(true);
    expect(() => derDecodeBoolean(hex('01'))).to.throw(DerError);
    expect(derNamedBits([0]).toString('hex')).to.equal('03020780');
    expect(derNamedBits([5, 6]).toString('hex')).to.equal('03020106');
    expect(derNamedBits([0, 8]).toString('hex')).to.equal('0303078080');
    expect(() => derDecodeBitString(hex('0781'))).to.throw(DerError, /unused bits are not zero/);
    expect(() => derDecodeBitString(hex('08ff'))).to.throw(DerError);
  });

  it('times: UTCTime before 2050, GeneralizedTime from 2050; invalid dates refused', () => {
    const decode = (bytes: Buffer): Date => derDecodeTime(new DerCursor(bytes, 't').next());
    expect(derTime(new Date('2049-12-31T23:59:59.999Z')).toString('latin1').slice(2)).to.equal('491231235959Z');
    expect(derTime(new Date('2050-01-01T00:00:00Z')).toString('latin1').slice(2)).to.equal('20500101000000Z');
    expect(decode(derTime(new Date('2026-03-01T12:00:00Z'))).toISOString()).to.equal('2026-03-01T12:00:00.000Z');
    expect(decode(derTime(new Date('2051-03-01T12:00:00Z'))).toISOString()).to.equal('2051-03-01T12:00:00.000Z');
    expect(decode(derTime(new Date('1999-03-01T12:00:00Z'))).toISOString()).to.equal('1999-03-01T12:00:00.000Z');
    expect(() => decode(Buffer.concat([hex('170d'), Buffer.from('260230120000Z')]))).to.throw(DerError, /not a valid date/);
    expect(() => decode(Buffer.concat([hex('170b'), Buffer.from('2603011200Z')]))).to.throw(DerError, /bad UTCTime/);
  });
});
