import { expect } from 'chai';
import type { RandomSource } from '../../../src/core/index.js';
import { SERIAL_NUMBER_BYTES, newSerialNumber } from '../../../src/pki/index.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { expectBrokerError } from './pki-fixtures.js';

/** Returns the given byte arrays in turn. */
function scripted(...draws: number[][]): RandomSource & { calls: number } {
  const source = {
    calls: 0,
    bytes(n: number): Buffer {
      const draw = draws[source.calls++] ?? [];
      return Buffer.concat([Buffer.from(draw), Buffer.alloc(Math.max(0, n - draw.length), 0x5a)]).subarray(0, n);
    },
  };
  return source;
}

describe('pki/serial-number', () => {
  it('is 16 bytes of hex, positive, first byte non-zero, over many draws', () => {
    const random = new SeededRandom('serials');
    const seen = new Set<string>();
    let topNibbles = 0;
    for (let i = 0; i < 5000; i++) {
      const serial = newSerialNumber(random);
      expect(serial).to.match(/^[0-9a-f]{32}$/);
      const first = parseInt(serial.slice(0, 2), 16);
      expect(first, serial).to.be.within(0x01, 0x7f);
      topNibbles |= 1 << (first >> 4);
      seen.add(serial);
    }
    expect(seen.size).to.equal(5000);
    expect(SERIAL_NUMBER_BYTES).to.equal(16);
    // All eight possible top nibbles of a positive first byte (0–7) occur: the mask does not
    // overdo it.
    expect(topNibbles).to.equal(0xff);
  });

  it('is deterministic for a seeded source', () => {
    expect(newSerialNumber(new SeededRandom('s'))).to.equal(newSerialNumber(new SeededRandom('s')));
    expect(newSerialNumber(new SeededRandom('s'))).to.not.equal(newSerialNumber(new SeededRandom('t')));
  });

  it('clears the top bit and draws again when the first byte would be 0x00 (or 0x80)', () => {
    const source = scripted([0x00, 1], [0x80, 2], [0xff, 3]);
    const serial = newSerialNumber(source);
    expect(source.calls).to.equal(3);
    expect(serial.slice(0, 4)).to.equal('7f03');
  });

  it('fails as internal when the random source keeps returning zeros', async () => {
    await expectBrokerError(() => newSerialNumber({ bytes: (n) => Buffer.alloc(n) }), 'internal', 'pki.random');
    await expectBrokerError(() => newSerialNumber({ bytes: () => Buffer.alloc(3, 1) }), 'internal', 'pki.random');
  });
});
