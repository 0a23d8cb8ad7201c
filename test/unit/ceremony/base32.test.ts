import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { base32Decode, base32Encode } from '../../../src/ceremony/base32.js';

describe('ceremony/base32', () => {
  // RFC 4648 §10 test vectors, in lowercase and without padding.
  const vectors: [string, string][] = [
    ['', ''],
    ['f', 'my'],
    ['fo', 'mzxq'],
    ['foo', 'mzxw6'],
    ['foob', 'mzxw6yq'],
    ['fooba', 'mzxw6ytb'],
    ['foobar', 'mzxw6ytboi'],
  ];
  for (const [plain, encoded] of vectors) {
    it(`"${plain}" <-> "${encoded}"`, () => {
      expect(base32Encode(Buffer.from(plain))).to.equal(encoded);
      expect(base32Decode(encoded)?.toString()).to.equal(plain);
    });
  }

  it('round-trips random bytes of every length up to 64', () => {
    for (let length = 0; length <= 64; length++) {
      const bytes = randomBytes(length);
      const text = base32Encode(bytes);
      expect(text).to.match(/^[a-z2-7]*$/);
      expect(text).to.have.length(Math.ceil((length * 8) / 5));
      expect(base32Decode(text)?.equals(bytes)).to.equal(true);
    }
  });

  it('decodes strictly: one text per byte string', () => {
    for (const bad of ['MY', 'm', 'mzx', 'mzxw6y', 'mz', 'mzxr', 'my=', 'm0', 'my-a', 'mé']) {
      expect(base32Decode(bad), bad).to.equal(null);
    }
  });
});
