import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { format, inspect } from 'node:util';
import { Secret, systemRandom } from '../../../src/core/index.js';
import { base32Decode, base32Encode } from '../../../src/ceremony/base32.js';
import {
  combineShares,
  parseShare,
  splitSecret,
  MAX_SPLIT_SECRET_BYTES,
  MIN_SPLIT_SECRET_BYTES,
  type ParsedShare,
  type QuorumSpec,
} from '../../../src/ceremony/quorum.js';
import { brokerError, fixedRandom, seededRandom } from './helpers.js';

/** Every k-element subset of `items`, in order. */
function subsets<T>(items: readonly T[], k: number): T[][] {
  if (k === 0) return [[]];
  return items.flatMap((item, position) => subsets(items.slice(position + 1), k - 1).map((rest) => [item, ...rest]));
}

/** Parses every share text, naming each by its officer number. */
function parseAll(texts: readonly string[]): ParsedShare[] {
  return texts.map((text, position) => parseShare(text, `officer-${position + 1}`));
}

/** The share text with `edit` applied to its fields and a freshly computed checksum (what a forger would do). */
function reforge(text: string, edit: (fields: string[]) => void): string {
  const fields = text.split('-');
  fields.pop();
  edit(fields);
  const body = fields.join('-');
  return `${body}-${base32Encode(createHash('sha256').update(body, 'ascii').digest().subarray(0, 5))}`;
}

/** Rewrites the share bytes of a share text (checksum recomputed). */
function reforgeBytes(text: string, edit: (bytes: Buffer) => void): string {
  return reforge(text, (fields) => {
    const bytes = base32Decode(fields[4] ?? '');
    expect(bytes).to.not.equal(null);
    edit(bytes!);
    fields[4] = base32Encode(bytes!);
  });
}

describe('ceremony/quorum', () => {
  // A fresh random PIN per run (as the ceremony generates them), so no check passes by luck.
  const pin = randomBytes(16).toString('hex');
  let secret: Secret;

  beforeEach(() => {
    secret = Secret.from(pin, 'generated');
  });

  afterEach(() => {
    secret.dispose();
  });

  describe('split and combine', () => {
    it('1 of 1: the single share reconstructs the secret', async () => {
      const texts = await splitSecret(secret, { shares: 1, threshold: 1 }, seededRandom('1of1'));
      expect(texts).to.have.length(1);
      const combined = await combineShares(parseAll(texts));
      expect(combined.equals(secret)).to.equal(true);
    });

    it('1 of 3: any single share, or several, reconstruct the secret', async () => {
      const texts = await splitSecret(secret, { shares: 3, threshold: 1 }, seededRandom('1of3'));
      const shares = parseAll(texts);
      for (const subset of [...subsets(shares, 1), ...subsets(shares, 2), shares]) {
        expect((await combineShares(subset)).equals(secret)).to.equal(true);
      }
    });

    for (const [threshold, count] of [
      [2, 3],
      [3, 5],
      [2, 2],
      [16, 16],
    ] as const) {
      it(`${threshold} of ${count}: every set of ${threshold} or more shares reconstructs the secret, in any order`, async () => {
        const texts = await splitSecret(secret, { shares: count, threshold }, seededRandom(`${threshold}of${count}`));
        expect(texts).to.have.length(count);
        const shares = parseAll(texts);
        shares.forEach((share, position) => {
          expect(share.index).to.equal(position + 1);
          expect(share.threshold).to.equal(threshold);
          expect(share.shares).to.equal(count);
          expect(share.setId).to.equal(shares[0]!.setId);
        });
        const sets = count <= 5 ? [...subsets(shares, threshold), shares] : [shares.slice(0, threshold)];
        for (const subset of sets) {
          const combined = await combineShares(subset);
          expect(combined.equals(secret), subset.map((s) => s.index).join(',')).to.equal(true);
          expect(combined.source).to.equal(`quorum:${shares[0]!.setId}`);
          const reversed = await combineShares([...subset].reverse());
          expect(reversed.equals(secret)).to.equal(true);
        }
      });
    }

    it('leaves the parsed shares usable (a retry after a failed attempt needs them)', async () => {
      const shares = parseAll(await splitSecret(secret, { shares: 3, threshold: 2 }, systemRandom));
      await combineShares([shares[0]!, shares[1]!]);
      expect((await combineShares([shares[0]!, shares[1]!])).equals(secret)).to.equal(true);
      expect(shares.every((share) => !share.disposed)).to.equal(true);
    });

    it('splits the same secret differently every time (fresh set id and polynomial)', async () => {
      const first = await splitSecret(secret, { shares: 3, threshold: 2 }, systemRandom);
      const second = await splitSecret(secret, { shares: 3, threshold: 2 }, systemRandom);
      expect(first[0]!.split('-')[1]).to.not.equal(second[0]!.split('-')[1]);
      expect(first[0]!.split('-')[4]).to.not.equal(second[0]!.split('-')[4]);
    });

    it('does not need the Secret after it returns (the caller may dispose it)', async () => {
      const texts = await splitSecret(secret, { shares: 3, threshold: 2 }, systemRandom);
      secret.dispose();
      const combined = await combineShares(parseAll(texts.slice(1)));
      expect(combined.reveal((value) => value)).to.equal(pin);
    });
  });

  describe('known answers (the format is stable)', () => {
    const fixturePin = '7f3a9c2e5b8d1f4a6c0e2b9d7a5c3e1f';
    const fixture = [
      'cbshare1-fivcukrk-2of3-1-vyheh5m5kjluuioib4zxyqvb5ei3ocvhwliqffua4o3hbb5a5mieo-u2g5t2ploiycgepkdjeksxned4-ho7yurdv',
      'cbshare1-fivcukrk-2of3-2-cgxyjnqskeflw5hrtatyxwzn3xbp6yj7ura2nqqbodvh4tddcvbro-u2g5t2ploiycgepkdjeksxned4-zdqojqgy',
      'cbshare1-fivcukrk-2of3-3-7z33oqrlp7eqez7nzl2g4bj2mmrpkkh3inkqzs5ujiz7frzyhighm-u2g5t2ploiycgepkdjeksxned4-xmjcrbvu',
    ];

    it('a 2-of-3 split made by an earlier build still combines, every pair', async () => {
      for (const pair of subsets(parseAll(fixture), 2)) {
        expect((await combineShares(pair)).reveal((value) => value)).to.equal(fixturePin);
      }
    });

    it('a 1-of-1 split with a fixed set id is exactly this text', async () => {
      const texts = await splitSecret(Secret.from(fixturePin), { shares: 1, threshold: 1 }, fixedRandom(0x2a));
      expect(texts).to.deep.equal([
        'cbshare1-fivcukrk-1of1-1-g5tdgyjzmmzgknlchbsdczrume3ggmdfgjrdszbxme2wgm3fgftac-u2g5t2ploiycgepkdjeksxned4-2j2fteg3',
      ]);
    });

    it('the set id is the base32 of the random bytes and the fields are laid out as documented', async () => {
      const [text] = await splitSecret(secret, { shares: 3, threshold: 2 }, fixedRandom(0x2a));
      const fields = text!.split('-');
      expect(fields).to.have.length(7);
      expect(fields.slice(0, 4)).to.deep.equal(['cbshare1', base32Encode(Buffer.alloc(5, 0x2a)), '2of3', '1']);
      // y bytes (one per secret byte) then x.
      expect(base32Decode(fields[4]!)).to.have.length(pin.length + 1);
      const commitment = createHash('sha256')
        .update('credbroker-share-commitment-v1\0')
        .update(Buffer.alloc(5, 0x2a))
        .update(pin)
        .digest()
        .subarray(0, 16);
      expect(fields[5]).to.equal(base32Encode(commitment));
      const body = fields.slice(0, 6).join('-');
      expect(fields[6]).to.equal(base32Encode(createHash('sha256').update(body).digest().subarray(0, 5)));
      expect(text).to.match(/^[a-z0-9-]+$/);
    });
  });

  describe('combineShares refuses before anything reaches an HSM', () => {
    let texts: string[];

    beforeEach(async () => {
      texts = await splitSecret(secret, { shares: 3, threshold: 2 }, seededRandom('refusals'));
    });

    it('fewer shares than the threshold: quorum_not_met says how many are needed', async () => {
      const error = await brokerError(() => combineShares(parseAll(texts.slice(0, 1))), 'ceremony.quorum_not_met');
      expect(error.kind).to.equal('invalid');
      expect(error.publicMessage).to.equal('2 of 3 shares are needed, 1 given');
    });

    it('3 of 5 with 2 shares: quorum_not_met', async () => {
      const five = await splitSecret(secret, { shares: 5, threshold: 3 }, systemRandom);
      const error = await brokerError(() => combineShares(parseAll(five).slice(2, 4)), 'ceremony.quorum_not_met');
      expect(error.publicMessage).to.equal('3 of 5 shares are needed, 2 given');
    });

    it('no shares at all: quorum_not_met', async () => {
      await brokerError(() => combineShares([]), 'ceremony.quorum_not_met');
    });

    it('a share of another split with the same parameters: share_mismatch naming both sources', async () => {
      const other = await splitSecret(secret, { shares: 3, threshold: 2 }, seededRandom('another split'));
      const shares = [parseShare(texts[0]!, 'file:/media/alice/share'), parseShare(other[1]!, 'file:/media/bob/share')];
      const error = await brokerError(() => combineShares(shares), 'ceremony.share_mismatch');
      expect(error.publicMessage).to.include('file:/media/alice/share').and.include('file:/media/bob/share');
      expect(error.publicMessage).to.include(shares[0]!.setId).and.include(shares[1]!.setId);
    });

    it('a share whose quorum or commitment was altered (checksum recomputed): share_mismatch', async () => {
      const quorum = reforge(texts[1]!, (fields) => {
        fields[2] = '2of4';
      });
      await brokerError(() => combineShares([parseShare(texts[0]!, 'a'), parseShare(quorum, 'b')]), 'ceremony.share_mismatch');
      const commitment = reforge(texts[1]!, (fields) => {
        fields[5] = base32Encode(Buffer.alloc(16, 1));
      });
      await brokerError(() => combineShares([parseShare(texts[0]!, 'a'), parseShare(commitment, 'b')]), 'ceremony.share_mismatch');
    });

    it('one byte of a share changed (checksum recomputed): share_wrong, and the secret is not returned', async () => {
      const altered = reforgeBytes(texts[1]!, (bytes) => {
        bytes[0] = (bytes[0] ?? 0) ^ 0x01;
      });
      const shares = [parseShare(texts[0]!, 'alice'), parseShare(altered, 'bob')];
      const error = await brokerError(() => combineShares(shares), 'ceremony.share_wrong');
      expect(error.publicMessage).to.equal('the shares do not reconstruct the root PIN: at least one share is wrong');
      expect(error.message).to.not.include(pin);
      // With all three shares the wrong one still spoils the result.
      await brokerError(() => combineShares([...shares, parseShare(texts[2]!, 'carol')]), 'ceremony.share_wrong');
    });

    it("a share whose x was set to another share's (checksum recomputed): share_wrong naming both", async () => {
      const x = parseShare(texts[0]!, 'a').revealBytes((bytes) => bytes[bytes.length - 1]!);
      const altered = reforgeBytes(texts[1]!, (bytes) => {
        bytes[bytes.length - 1] = x;
      });
      const error = await brokerError(() => combineShares([parseShare(texts[0]!, 'alice'), parseShare(altered, 'bob')]), 'ceremony.share_wrong');
      expect(error.publicMessage).to.include('alice').and.include('bob');
    });

    it('the same share twice: share_duplicate naming both sources (not counted toward the quorum)', async () => {
      const shares = [parseShare(texts[0]!, 'file:/a'), parseShare(texts[0]!, 'prompt')];
      const error = await brokerError(() => combineShares(shares), 'ceremony.share_duplicate');
      expect(error.publicMessage).to.include('file:/a').and.include('prompt').and.include('share 1');
    });

    it('two different shares claiming the same index: share_duplicate', async () => {
      const relabelled = reforge(texts[1]!, (fields) => {
        fields[3] = '1';
      });
      await brokerError(() => combineShares([parseShare(texts[0]!, 'a'), parseShare(relabelled, 'b')]), 'ceremony.share_duplicate');
    });
  });

  describe('parseShare', () => {
    let text: string;

    beforeEach(async () => {
      [text = ''] = await splitSecret(secret, { shares: 3, threshold: 2 }, seededRandom('parse'));
    });

    it('accepts a trailing newline, surrounding spaces and any letter case', () => {
      for (const variant of [`${text}\n`, `${text}\r\n`, `  ${text}  `, text.toUpperCase()]) {
        const share = parseShare(variant, 'file:/x');
        expect(share.index).to.equal(1);
        expect(share.source).to.equal('file:/x');
      }
    });

    it('one mistyped character anywhere: share_invalid naming the source', async () => {
      const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
      for (let position = 9; position < text.length; position++) {
        const char = text.charAt(position);
        if (char === '-') continue;
        const replacement = /\d/.test(char) ? String((Number(char) % 9) + 1) : alphabet.charAt((alphabet.indexOf(char) + 1) % 32);
        const typo = text.slice(0, position) + replacement + text.slice(position + 1);
        const error = await brokerError(() => parseShare(typo, 'file:/home/alice/root.share'), 'ceremony.share_invalid');
        expect(error.kind).to.equal('invalid');
        expect(error.publicMessage, `position ${position}`).to.include('file:/home/alice/root.share');
      }
    });

    it('a checksum mismatch says the share is mistyped', async () => {
      const position = text.length - 20;
      const typo = text.slice(0, position) + (text.charAt(position) === 'a' ? 'b' : 'a') + text.slice(position + 1);
      const error = await brokerError(() => parseShare(typo, 'prompt'), 'ceremony.share_invalid');
      expect(error.publicMessage).to.match(/^the share from prompt is mistyped/).and.include('checksum');
    });

    it('a digit that base32 never uses is named with its position and the likely letter', async () => {
      const fields = text.split('-');
      const position = fields.slice(0, 4).join('-').length + 1 + 3; // 0-based, in the share field
      const typo = `${text.slice(0, position)}0${text.slice(position + 1)}`;
      const error = await brokerError(() => parseShare(typo, 'alice'), 'ceremony.share_invalid');
      expect(error.publicMessage).to.include(`character ${position + 1} is "0"`).and.include('did you mean "o"?');
    });

    for (const [name, mangle, fragment] of [
      ['empty', () => '  \n', 'is empty'],
      ['not a share', () => 'hunter2', 'is not a credbroker share'],
      ['another version', (t: string) => t.replace('cbshare1', 'cbshare2'), 'format this version does not read'],
      ['cut short', (t: string) => t.slice(0, 40), 'fields'],
      ['missing the checksum', (t: string) => t.slice(0, t.lastIndexOf('-')), 'fields'],
      ['two shares joined', (t: string) => `${t}-${t}`, 'fields'],
      ['cut in the last field', (t: string) => t.slice(0, -2), 'checksum'],
      ['inner whitespace', (t: string) => `${t.slice(0, 30)} ${t.slice(30)}`, 'whitespace'],
    ] as const) {
      it(`${name}: share_invalid`, async () => {
        const error = await brokerError(() => parseShare(mangle(text), 'bob'), 'ceremony.share_invalid');
        expect(error.publicMessage).to.include('the share from bob').and.include(fragment);
      });
    }

    it('fields out of range with a valid checksum: share_invalid', async () => {
      const cases: [(fields: string[]) => void, string][] = [
        [(f) => (f[2] = '3of2'), 'quorum'],
        [(f) => (f[2] = '2of17'), 'quorum'],
        [(f) => (f[2] = '0of3'), 'quorum'],
        [(f) => (f[3] = '4'), 'index'],
        [(f) => (f[3] = '0'), 'index'],
        [(f) => (f[3] = '01'), 'index'],
        [(f) => (f[1] = 'aaaaaaa'), 'set id'],
        [(f) => (f[5] = 'aaaa'), 'commitment'],
        [(f) => (f[4] = 'ae'), 'share bytes'], // one byte only: no y
        [(f) => (f[4] = base32Encode(Buffer.from([1, 2, 0]))), 'share bytes'], // x = 0
      ];
      for (const [edit, fragment] of cases) {
        const error = await brokerError(() => parseShare(reforge(text, edit), 'carol'), 'ceremony.share_invalid');
        expect(error.publicMessage).to.include('carol').and.include(fragment);
      }
    });
  });

  describe('secrecy', () => {
    it('no share text contains the secret in any usual encoding', async () => {
      const bytes = Buffer.from(pin);
      const encodings = [pin, bytes.toString('hex'), bytes.toString('base64'), bytes.toString('base64url'), base32Encode(bytes)];
      for (const spec of [
        { shares: 3, threshold: 2 },
        { shares: 5, threshold: 3 },
      ]) {
        for (const text of await splitSecret(secret, spec, systemRandom)) {
          for (const encoding of encodings) expect(text.toLowerCase()).to.not.include(encoding.toLowerCase());
          // Nor a long run of it: 8 characters of the PIN would be a leak worth noticing.
          for (let start = 0; start + 8 <= pin.length; start++) expect(text).to.not.include(pin.slice(start, start + 8));
        }
      }
    });

    it('a parsed share never prints its bytes; dispose zeroes them', async () => {
      const [text = ''] = await splitSecret(secret, { shares: 3, threshold: 2 }, systemRandom);
      const share = parseShare(text, 'file:/x');
      const shareField = text.split('-')[4]!;
      const commitmentField = text.split('-')[5]!;
      const hex = share.revealBytes((bytes) => Buffer.from(bytes).toString('hex'));
      // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- what the test is about
      const renderings = [String(share), `${share}`, JSON.stringify({ share }), inspect(share), inspect({ deep: { share } }, { depth: 5 }), format('%s %o %j', share, share, share)];
      for (const rendering of renderings) {
        for (const leak of [shareField, commitmentField, hex, text]) expect(rendering).to.not.include(leak);
        expect(rendering).to.include(share.setId);
      }
      expect(inspect(share)).to.include('[redacted]');
      const view = share.revealBytes((bytes) => bytes);
      share.dispose();
      expect([...view].every((byte) => byte === 0)).to.equal(true);
      expect(share.disposed).to.equal(true);
      expect(() => share.revealBytes(() => 0)).to.throw(/disposed/);
    });

    it('the combined secret prints [redacted]', async () => {
      const texts = await splitSecret(secret, { shares: 2, threshold: 2 }, systemRandom);
      const combined = await combineShares(parseAll(texts));
      for (const rendering of [String(combined), JSON.stringify({ combined }), inspect(combined)]) {
        expect(rendering).to.not.include(pin);
        expect(rendering).to.include('[redacted]');
      }
    });
  });

  describe('splitSecret refuses', () => {
    const bad: QuorumSpec[] = [
      { shares: 0, threshold: 0 },
      { shares: 3, threshold: 0 },
      { shares: 2, threshold: 3 },
      { shares: 17, threshold: 2 },
      { shares: 3, threshold: 1.5 },
      { shares: Number.NaN, threshold: 1 },
      { shares: -1, threshold: -2 },
    ];
    for (const spec of bad) {
      it(`the quorum ${spec.threshold} of ${spec.shares}`, async () => {
        const error = await brokerError(() => splitSecret(secret, spec, systemRandom), 'ceremony.quorum_invalid');
        expect(error.publicMessage).to.include('1 <= threshold <= shares <= 16');
      });
    }

    it(`secrets shorter than ${MIN_SPLIT_SECRET_BYTES} or longer than ${MAX_SPLIT_SECRET_BYTES} bytes`, async () => {
      for (const length of [0, MIN_SPLIT_SECRET_BYTES - 1, MAX_SPLIT_SECRET_BYTES + 1]) {
        const short = Secret.from('x'.repeat(length));
        const error = await brokerError(() => splitSecret(short, { shares: 2, threshold: 2 }, systemRandom), 'ceremony.secret_length');
        expect(error.publicMessage).to.include(`this one has ${length}`);
      }
      const longest = Secret.from('y'.repeat(MAX_SPLIT_SECRET_BYTES));
      const texts = await splitSecret(longest, { shares: 2, threshold: 2 }, systemRandom);
      expect((await combineShares(parseAll(texts))).equals(longest)).to.equal(true);
    });
  });
});
