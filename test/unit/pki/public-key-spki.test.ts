import { expect } from 'chai';
import { ECDH, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { importPublicKeySpki, spkiOfPublicKey } from '../../../src/pki/public-key-spki.js';
import { derBitString, derOid, derSequence, derTlv } from '../../../src/pki/index.js';
import { p256Spki, rsaSpki, smallP256Point } from './csr-differential.js';

/** What node says about a key: type, details, SPKI. */
function keyFacts(key: KeyObject): Record<string, unknown> {
  return {
    type: key.type,
    asymmetricKeyType: key.asymmetricKeyType,
    details: key.asymmetricKeyDetails,
    spki: key.export({ format: 'der', type: 'spki' }).toString('hex'),
  };
}

/** The error createPublicKey throws for `spki`, or null. */
function createError(spki: Uint8Array): string | null {
  try {
    createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

describe('pki/public-key-spki', () => {
  const keys: [string, KeyObject][] = [
    ['P-256', generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey],
    ['P-384', generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey],
    ['Ed25519', generateKeyPairSync('ed25519').publicKey],
    ['RSA-2048', generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey],
    ['RSA-3072', generateKeyPairSync('rsa', { modulusLength: 3072 }).publicKey],
    ['RSA-2056 (modulus not a multiple of 16 bits)', generateKeyPairSync('rsa', { modulusLength: 2056 }).publicKey],
  ];

  for (const [name, key] of keys) {
    it(`${name}: the same key as createPublicKey, and the remembered SPKI is node's export`, async () => {
      const spki = key.export({ format: 'der', type: 'spki' });
      const imported = await importPublicKeySpki(spki);
      expect(imported.equals(key)).to.equal(true);
      expect(keyFacts(imported)).to.deep.equal(keyFacts(createPublicKey({ key: spki, format: 'der', type: 'spki' })));
      const remembered = spkiOfPublicKey(imported);
      expect(Buffer.from(remembered).equals(spki)).to.equal(true);
      spki.fill(0); // the caller's buffer is not kept
      expect(Buffer.from(spkiOfPublicKey(imported)).equals(imported.export({ format: 'der', type: 'spki' }))).to.equal(true);
    });
  }

  it('a key from elsewhere: exported once, then the same bytes', () => {
    const key = generateKeyPairSync('ed25519').publicKey;
    const first = spkiOfPublicKey(key);
    expect(Buffer.from(first).equals(key.export({ format: 'der', type: 'spki' }))).to.equal(true);
    expect(spkiOfPublicKey(key)).to.equal(first);
  });

  it('a non-canonical SPKI (compressed point) gives the same key, and the SPKI node exports for it', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
    const point = key.export({ format: 'der', type: 'spki' }).subarray(26);
    const compressed = p256Spki(ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'compressed') as Buffer);
    const imported = await importPublicKeySpki(compressed);
    expect(imported.equals(key)).to.equal(true);
    // node keeps the point's form: the export is the compressed SPKI, as it always was.
    expect(Buffer.from(spkiOfPublicKey(imported)).equals(imported.export({ format: 'der', type: 'spki' }))).to.equal(true);
    expect(Buffer.from(spkiOfPublicKey(imported)).equals(compressed)).to.equal(true);
  });

  describe('refuses exactly what createPublicKey refuses, with its error', () => {
    const [x, y] = smallP256Point();
    const hex = (value: bigint): string => value.toString(16).padStart(64, '0');
    const cases: [string, Buffer][] = [
      ['a P-256 point off the curve', p256Spki(Buffer.from(`04${hex(x)}${hex(y + 1n)}`, 'hex'))],
      ['a P-256 point with x + p for x', p256Spki(Buffer.from(`04${hex(x + 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn)}${hex(y)}`, 'hex'))],
      ['a P-384 SPKI with a P-256 point', Buffer.concat([Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'), Buffer.from(`04${hex(x)}${hex(y)}${'00'.repeat(32)}`, 'hex')])],
    ];
    for (const [name, spki] of cases) {
      it(name, async () => {
        const expected = createError(spki);
        let actual: string | null = null;
        try {
          await importPublicKeySpki(spki);
        } catch (error) {
          actual = (error as Error).message;
        }
        expect(actual).to.not.equal(null);
        expect(actual).to.equal(expected);
      });
    }
  });

  it('oddities take the generic path and end as they did', async () => {
    const modulus = Buffer.concat([Buffer.from([0]), Buffer.alloc(256, 0xc3)]);
    const inputs = [
      rsaSpki(Buffer.from([0]), Buffer.from('010001', 'hex')),
      rsaSpki(modulus.subarray(1), Buffer.from('010001', 'hex')),
      rsaSpki(Buffer.concat([Buffer.from([0]), modulus]), Buffer.from('010001', 'hex')),
      rsaSpki(modulus, Buffer.from('00010001', 'hex')),
      rsaSpki(modulus, Buffer.from('010001', 'hex'), false),
      derSequence(derSequence(derOid('1.2.840.113549.1.1.1'), derTlv(0x05, Buffer.alloc(0))), derBitString(Buffer.concat([derSequence(derTlv(0x02, modulus), derTlv(0x02, Buffer.from('010001', 'hex'))), Buffer.from([0])]))),
    ];
    for (const spki of inputs) {
      const expected = createError(spki);
      let facts: Record<string, unknown> | string;
      try {
        facts = keyFacts(await importPublicKeySpki(spki));
      } catch (error) {
        facts = (error as Error).message;
      }
      expect(facts).to.deep.equal(expected ?? keyFacts(createPublicKey({ key: spki, format: 'der', type: 'spki' })));
    }
  });

  it('refuses the EC point at infinity, which createPublicKey reads but Node cannot describe (asymmetricKeyDetails aborts the process)', async () => {
    const infinities = ['3019301306072a8648ce3d020106082a8648ce3d03010703020000', '3016301006072a8648ce3d020106052b8104002203020000', '3019301306072a8648ce3d020106082a8648ce3d03010703020700'];
    for (const spki of infinities.map((hex) => Buffer.from(hex, 'hex'))) {
      let error: unknown;
      try {
        await importPublicKeySpki(spki);
      } catch (caught) {
        error = caught;
      }
      expect(error).to.be.instanceOf(RangeError);
      expect((error as Error).message).to.match(/point at infinity/);
    }
  });

  it('a valid point with small coordinates is the same key both ways', async () => {
    const [x, y] = smallP256Point();
    const spki = p256Spki(Buffer.from(`04${x.toString(16).padStart(64, '0')}${y.toString(16).padStart(64, '0')}`, 'hex'));
    const imported = await importPublicKeySpki(spki);
    expect(keyFacts(imported)).to.deep.equal(keyFacts(createPublicKey({ key: spki, format: 'der', type: 'spki' })));
  });
});
