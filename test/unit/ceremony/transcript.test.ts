import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BrokerError,
  ManualClock,
  Secret,
  SoftwareSigner,
  spkiOf,
  verifySignature,
  type KeyType,
  type Signer,
} from '../../../src/core/index.js';
import {
  TRANSCRIPT_FILE_MODE,
  TranscriptWriter,
  verifyTranscript,
  TRANSCRIPT_ZERO_HASH,
  type TranscriptVerification,
} from '../../../src/ceremony/transcript.js';
import { parseShare, splitSecret } from '../../../src/ceremony/quorum.js';
import { brokerError, seededRandom } from './helpers.js';

const START = new Date('2026-03-01T09:00:00.000Z');
const PLAN_SHA256 = 'ab'.repeat(32);

const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** The lines of a transcript text, without the final empty string. */
function linesOf(text: string): string[] {
  const lines = text.split('\n');
  expect(lines.pop()).to.equal('');
  return lines;
}

const textOf = (lines: readonly string[]): string => lines.map((line) => `${line}\n`).join('');

/** Expects a failed verification naming `badLine`, with a reason matching `reason`. */
function expectBad(result: TranscriptVerification, badLine: number, reason: RegExp): void {
  expect(result.ok, JSON.stringify(result.reason)).to.equal(false);
  expect(result.badLine, result.reason).to.equal(badLine);
  expect(result.reason).to.match(reason);
  expect(result.entries).to.have.length(badLine - 1);
}

describe('ceremony/transcript', () => {
  let directory: string;
  let clock: ManualClock;
  let signer: SoftwareSigner;
  let otherSigner: SoftwareSigner;

  before(async () => {
    signer = await SoftwareSigner.generate('P-256', 'software:root');
    otherSigner = await SoftwareSigner.generate('P-256', 'software:intruder');
  });

  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'credbroker-transcript-'));
    clock = new ManualClock(START);
  });

  afterEach(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  /** A header, four entries and a signature: 6 lines. */
  async function writeSample(path = join(directory, 'ceremony.jsonl'), by: Signer = signer): Promise<string> {
    const writer = await TranscriptWriter.create(path, clock, { ceremony: 'root-2026', planSha256: PLAN_SHA256 });
    clock.advance(1_000);
    await writer.append('key-generated', { token: 'cb-root', label: 'root-2026', type: 'P-384' });
    clock.advance(1_000);
    await writer.append('certificate', { role: 'root', serialNumber: '01ab', sha256: 'cd'.repeat(32) });
    clock.advance(1_000);
    await writer.append('crl', { number: 1, nextUpdate: '2026-06-01T00:00:00.000Z' });
    await writer.append('chain-verified', { chain: ['cd'.repeat(32)] });
    clock.advance(1_000);
    await writer.sign(by, { token: 'cb-root', label: 'root-2026' });
    return readFileSync(path, 'utf8');
  }

  describe('TranscriptWriter', () => {
    it('writes the documented lines: header, entries chained by SHA-256, signature last', async () => {
      const text = await writeSample();
      const lines = linesOf(text);
      expect(lines).to.have.length(6);
      expect(lines[0]).to.equal(
        '{"seq":0,"time":"2026-03-01T09:00:00.000Z","type":"header","data":{"format":"credbroker-transcript-v1",' +
          `"ceremony":"root-2026","planSha256":"${PLAN_SHA256}"},"prev":"${TRANSCRIPT_ZERO_HASH}"}`,
      );
      expect(lines[1]).to.equal(
        '{"seq":1,"time":"2026-03-01T09:00:01.000Z","type":"key-generated","data":{"token":"cb-root","label":"root-2026","type":"P-384"},' +
          `"prev":"${sha256Hex(lines[0]!)}"}`,
      );
      lines.forEach((line, index) => {
        const parsed = JSON.parse(line) as { seq: number; prev: string };
        expect(parsed.seq).to.equal(index);
        expect(parsed.prev).to.equal(index === 0 ? TRANSCRIPT_ZERO_HASH : sha256Hex(lines[index - 1]!));
      });
      const signature = JSON.parse(lines[5]!) as {
        type: string;
        time: string;
        prev: string;
        data: { algorithm: string; publicKey: string; key: unknown; signature: string };
      };
      expect(signature.type).to.equal('signature');
      expect(signature.time).to.equal('2026-03-01T09:00:04.000Z');
      expect(Object.keys(signature.data)).to.deep.equal(['algorithm', 'publicKey', 'key', 'signature']);
      expect(signature.data.algorithm).to.equal('ES256');
      expect(signature.data.publicKey).to.equal(spkiOf(signer.publicKey).toString('base64'));
      expect(signature.data.key).to.deep.equal({ token: 'cb-root', label: 'root-2026' });
      // The signed message, recomputed from the documentation.
      const message = Buffer.from(`credbroker-transcript-v1\n${sha256Hex(lines[4]!)}`, 'utf8');
      expect(verifySignature('ES256', signer.publicKey, message, Buffer.from(signature.data.signature, 'base64'))).to.equal(true);
    });

    it('returns each entry as written and keeps headHash at the last line', async () => {
      const path = join(directory, 't.jsonl');
      const writer = await TranscriptWriter.create(path, clock, { ceremony: 'x' });
      expect(writer.path).to.equal(path);
      const headerHash = writer.headHash;
      expect(headerHash).to.equal(sha256Hex(linesOf(readFileSync(path, 'utf8'))[0]!));
      const entry = await writer.append('officer-present', { officer: 'alice' });
      expect(entry).to.deep.equal({ seq: 1, time: START.toISOString(), type: 'officer-present', data: { officer: 'alice' }, prev: headerHash });
      expect(Object.isFrozen(entry) && Object.isFrozen(entry.data)).to.equal(true);
      const lines = linesOf(readFileSync(path, 'utf8'));
      expect(JSON.parse(lines[1]!)).to.deep.equal(entry);
      expect(writer.headHash).to.equal(sha256Hex(lines[1]!));
      await writer.close();
    });

    it('creates the file with mode 0644 whatever the umask', async () => {
      const previous = process.umask(0o077);
      const path = join(directory, 'public.jsonl');
      try {
        const writer = await TranscriptWriter.create(path, clock, { ceremony: 'x' });
        await writer.close();
      } finally {
        process.umask(previous);
      }
      expect(TRANSCRIPT_FILE_MODE).to.equal(0o644);
      expect(statSync(path).mode & 0o7777).to.equal(0o644);
    });

    it('refuses an existing file, naming it, and leaves it untouched', async () => {
      const path = join(directory, 'old.jsonl');
      writeFileSync(path, 'an earlier ceremony\n');
      const error = await brokerError(() => TranscriptWriter.create(path, clock, { ceremony: 'x' }), 'ceremony.output_exists');
      expect(error.kind).to.equal('conflict');
      expect(error.publicMessage).to.include(path);
      expect(readFileSync(path, 'utf8')).to.equal('an earlier ceremony\n');
    });

    it('writes concurrent appends one after another, in call order, before the signature', async () => {
      const path = join(directory, 'concurrent.jsonl');
      const writer = await TranscriptWriter.create(path, clock, { ceremony: 'x' });
      const appends = Array.from({ length: 25 }, (_, n) => writer.append('step', { n }));
      const signed = writer.sign(signer, { label: 'root' });
      const entries = await Promise.all(appends);
      await signed;
      expect(entries.map((entry) => entry.seq)).to.deep.equal(Array.from({ length: 25 }, (_, n) => n + 1));
      const result = verifyTranscript(readFileSync(path, 'utf8'), { publicKey: signer.publicKey });
      expect(result.ok, result.reason).to.equal(true);
      expect(result.entries.slice(1, -1).map((entry) => entry.data['n'])).to.deep.equal(Array.from({ length: 25 }, (_, n) => n));
    });

    it('keeps one line per entry whatever the data holds (newlines, non-ASCII, numeric keys)', async () => {
      const path = join(directory, 'unicode.jsonl');
      const writer = await TranscriptWriter.create(path, clock, { ceremony: 'Zoë’s ceremony \u2028 😀' });
      await writer.append('note', { text: 'two\nlines\r\n', officer: 'Ørjan', '2': 'b', '1': 'a', nothing: null, nested: { list: [1, 2.5, -0, 1e21] } });
      await writer.sign(signer, { label: 'root' });
      const written = readFileSync(path, 'utf8');
      expect(linesOf(written)).to.have.length(3);
      const result = verifyTranscript(written, { publicKey: signer.publicKey });
      expect(result.ok, result.reason).to.equal(true);
      expect(result.entries[1]!.data).to.include({ text: 'two\nlines\r\n', officer: 'Ørjan' });
    });

    it('records data as it was at the call', async () => {
      const path = join(directory, 'snapshot.jsonl');
      const writer = await TranscriptWriter.create(path, clock, { ceremony: 'x' });
      const data = { officers: ['alice'] };
      const appended = writer.append('quorum-met', data);
      data.officers.push('mallory');
      await appended;
      await writer.close();
      expect(readFileSync(path, 'utf8')).to.include('"officers":["alice"]').and.not.include('mallory');
    });

    it('refuses appends after sign, and a second sign', async () => {
      const path = join(directory, 'sealed.jsonl');
      const writer = await TranscriptWriter.create(path, clock, { ceremony: 'x' });
      const signing = writer.sign(signer, { label: 'root' });
      await brokerError(() => writer.append('late', {}), 'ceremony.transcript_signed');
      await signing;
      await brokerError(() => writer.append('late', {}), 'ceremony.transcript_signed');
      await brokerError(() => writer.sign(signer, { label: 'root' }), 'ceremony.transcript_signed');
      expect(verifyTranscript(readFileSync(path, 'utf8')).ok).to.equal(true);
    });

    it('refuses bad event types and reserved ones', async () => {
      const writer = await TranscriptWriter.create(join(directory, 'types.jsonl'), clock, { ceremony: 'x' });
      for (const type of ['', 'header', 'signature', 'Key', 'key generated', '1st', 'x'.repeat(65)]) {
        await brokerError(() => writer.append(type, {}), 'ceremony.transcript_type');
      }
      await writer.close();
    });

    it('refuses secrets, shares, bytes and keys in data, and writes nothing', async () => {
      const path = join(directory, 'secrets.jsonl');
      const writer = await TranscriptWriter.create(path, clock, { ceremony: 'x' });
      const before = readFileSync(path, 'utf8');
      const [shareText = ''] = await splitSecret(Secret.from('0123456789abcdef0123456789abcdef'), { shares: 2, threshold: 2 }, seededRandom('t'));
      for (const data of [
        { pin: Secret.from('1234') },
        { nested: { deeper: [Secret.from('1234')] } },
        { share: parseShare(shareText, 'prompt') },
        { raw: Buffer.from('key material') },
        { raw: new Uint8Array(4) },
        { key: signer.publicKey },
      ]) {
        const error = await brokerError(() => writer.append('oops', data), 'ceremony.transcript_data');
        expect(error.kind).to.equal('invalid');
      }
      await brokerError(() => writer.append('oops', { n: 1n }), 'ceremony.transcript_data');
      const cyclic: Record<string, unknown> = {};
      cyclic['self'] = cyclic;
      await brokerError(() => writer.append('oops', cyclic), 'ceremony.transcript_data');
      expect(readFileSync(path, 'utf8')).to.equal(before);
      await writer.close();
    });

    it('refuses a header that sets "format" or holds a secret, and creates no file', async () => {
      const path = join(directory, 'header.jsonl');
      await brokerError(() => TranscriptWriter.create(path, clock, { format: 'mine' }), 'ceremony.transcript_data');
      await brokerError(() => TranscriptWriter.create(path, clock, { pin: Secret.from('1234') }), 'ceremony.transcript_data');
      expect(existsSync(path)).to.equal(false);
    });

    it('a failing signer writes nothing, and sign can be retried', async () => {
      const path = join(directory, 'retry.jsonl');
      const writer = await TranscriptWriter.create(path, clock, { ceremony: 'x' });
      await writer.append('step', { n: 1 });
      const before = readFileSync(path, 'utf8');
      const down: Signer = {
        algorithm: signer.algorithm,
        keyType: signer.keyType,
        publicKey: signer.publicKey,
        description: 'hsm:down',
        sign: () => Promise.reject(new BrokerError('unavailable', { code: 'hsm.unavailable', publicMessage: 'the HSM is unreachable' })),
      };
      await brokerError(() => writer.sign(down, { label: 'root' }), 'hsm.unavailable');
      expect(readFileSync(path, 'utf8')).to.equal(before);
      const liar: Signer = { ...down, sign: () => Promise.resolve(new Uint8Array(64)) };
      await brokerError(() => writer.sign(liar, { label: 'root' }), 'ceremony.transcript_signature_invalid');
      expect(readFileSync(path, 'utf8')).to.equal(before);
      await writer.sign(signer, { label: 'root' });
      expect(verifyTranscript(readFileSync(path, 'utf8'), { publicKey: signer.publicKey }).ok).to.equal(true);
    });

    it('close without signing leaves a transcript that verifies only when a signature is not required', async () => {
      const path = join(directory, 'aborted.jsonl');
      const writer = await TranscriptWriter.create(path, clock, { ceremony: 'x' });
      await writer.append('failed', { step: 2, code: 'hsm.pin_incorrect' });
      await writer.close();
      await writer.close();
      await brokerError(() => writer.append('late', {}), 'ceremony.transcript_closed');
      const text = readFileSync(path, 'utf8');
      const required = verifyTranscript(text);
      expectBad(required, 3, /without a signature/);
      const optional = verifyTranscript(text, { requireSignature: false });
      expect(optional.ok).to.equal(true);
      expect(optional.signed).to.equal(false);
      expect(optional.entries).to.have.length(2);
    });
  });

  describe('verifyTranscript', () => {
    let text: string;
    let lines: string[];

    beforeEach(async () => {
      text = await writeSample();
      lines = linesOf(text);
    });

    it('accepts an intact transcript, with and without the pinned key', () => {
      for (const result of [verifyTranscript(text), verifyTranscript(text, { publicKey: signer.publicKey })]) {
        expect(result.ok, result.reason).to.equal(true);
        expect(result.signed).to.equal(true);
        expect(result.lines).to.equal(6);
        expect(result.badLine).to.equal(undefined);
        expect(result.publicKeySha256).to.equal(createHash('sha256').update(spkiOf(signer.publicKey)).digest('hex'));
        expect(result.entries.map((entry) => entry.type)).to.deep.equal(['header', 'key-generated', 'certificate', 'crl', 'chain-verified', 'signature']);
        expect(result.entries[0]!.data).to.include({ format: 'credbroker-transcript-v1', ceremony: 'root-2026', planSha256: PLAN_SHA256 });
      }
    });

    for (const keyType of ['P-384', 'Ed25519', 'RSA-3072'] as const satisfies readonly KeyType[]) {
      it(`verifies a transcript signed with a ${keyType} key`, async () => {
        const keySigner = await SoftwareSigner.generate(keyType);
        const signed = await writeSample(join(directory, `${keyType}.jsonl`), keySigner);
        const result = verifyTranscript(signed, { publicKey: keySigner.publicKey });
        expect(result.ok, result.reason).to.equal(true);
        expect(result.signed).to.equal(true);
      });
    }

    it('tampered data in a middle line: names that line', () => {
      const tampered = [...lines];
      tampered[2] = tampered[2]!.replace('"serialNumber":"01ab"', '"serialNumber":"01ac"');
      expect(tampered[2]).to.not.equal(lines[2]);
      expectBad(verifyTranscript(textOf(tampered)), 3, /line 3 was modified: line 4 records a different hash/);
    });

    it('tampered header: names line 1', () => {
      const tampered = [...lines];
      tampered[0] = tampered[0]!.replace(PLAN_SHA256, 'ef'.repeat(32));
      expectBad(verifyTranscript(textOf(tampered)), 1, /line 1 was modified/);
    });

    it('tampered last entry before the signature: names it', () => {
      const tampered = [...lines];
      tampered[4] = tampered[4]!.replace('"chain":["', '"chain":["00');
      expectBad(verifyTranscript(textOf(tampered)), 5, /line 5 was modified/);
    });

    it('a line whose prev was rewritten: names the line where the chain breaks', () => {
      const tampered = [...lines];
      tampered[3] = tampered[3]!.replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${'1'.repeat(64)}"`);
      expectBad(verifyTranscript(textOf(tampered)), 4, /line 4 does not chain to line 3/);
    });

    it('a line modified and the chain recomputed after it (a forger without the key): the signature fails', () => {
      const forged = [...lines];
      forged[2] = forged[2]!.replace('"serialNumber":"01ab"', '"serialNumber":"01ac"');
      for (let index = 3; index < forged.length; index++) {
        forged[index] = forged[index]!.replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${sha256Hex(forged[index - 1]!)}"`);
      }
      expectBad(verifyTranscript(textOf(forged)), 6, /line 6 \(the signature\) has a signature that does not verify/);
    });

    it('the same forgery re-signed with another key passes only without the pinned key', async () => {
      const forged = [...lines.slice(0, 5)];
      forged[2] = forged[2]!.replace('"serialNumber":"01ab"', '"serialNumber":"01ac"');
      for (let index = 3; index < forged.length; index++) {
        forged[index] = forged[index]!.replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${sha256Hex(forged[index - 1]!)}"`);
      }
      const prev = sha256Hex(forged[4]!);
      const signature = await otherSigner.sign(Buffer.from(`credbroker-transcript-v1\n${prev}`));
      const original = JSON.parse(lines[5]!) as { data: Record<string, unknown> };
      forged.push(
        JSON.stringify({
          seq: 5,
          time: '2026-03-01T09:00:04.000Z',
          type: 'signature',
          data: { ...original.data, publicKey: spkiOf(otherSigner.publicKey).toString('base64'), signature: Buffer.from(signature).toString('base64') },
          prev,
        }),
      );
      expect(verifyTranscript(textOf(forged)).ok).to.equal(true);
      const pinned = verifyTranscript(textOf(forged), { publicKey: signer.publicKey });
      expectBad(pinned, 6, /not the expected key/);
      expect(pinned.signed).to.equal(false);
      expect(pinned.publicKeySha256).to.equal(createHash('sha256').update(spkiOf(otherSigner.publicKey)).digest('hex'));
    });

    it('the right transcript checked against the wrong pinned key fails on the signature line', () => {
      const result = verifyTranscript(text, { publicKey: otherSigner.publicKey });
      expectBad(result, 6, /line 6 \(the signature\) is by the key with SPKI SHA-256 [0-9a-f]{64}, not the expected key [0-9a-f]{64}/);
      expect(result.signed).to.equal(false);
    });

    it('a deleted line: names the first line out of place', () => {
      expectBad(verifyTranscript(textOf([...lines.slice(0, 2), ...lines.slice(3)])), 3, /line 3 has seq 3, expected 2: lines were deleted/);
    });

    it('reordered lines: names the first line out of place', () => {
      const swapped = [lines[0]!, lines[1]!, lines[3]!, lines[2]!, lines[4]!, lines[5]!];
      expectBad(verifyTranscript(textOf(swapped)), 3, /line 3 has seq 3, expected 2/);
    });

    it('a line appended after the signature', () => {
      const extra = JSON.stringify({ seq: 6, time: '2026-03-01T10:00:00.000Z', type: 'late', data: {}, prev: sha256Hex(lines[5]!) });
      const result = verifyTranscript(textOf([...lines, extra]));
      expectBad(result, 7, /line 7 follows the signature on line 6/);
      expect(result.signed).to.equal(false);
    });

    it('a truncated signature line (file cut short)', () => {
      expectBad(verifyTranscript(text.slice(0, -30)), 6, /line 6 does not end with a newline: the transcript was cut short/);
    });

    it('a truncated signature value', () => {
      const cut = [...lines];
      const signatureLine = JSON.parse(cut[5]!) as { data: { signature: string } } & Record<string, unknown>;
      const short = signatureLine.data.signature.slice(0, 40);
      cut[5] = cut[5]!.replace(signatureLine.data.signature, short);
      expectBad(verifyTranscript(textOf(cut)), 6, /line 6 \(the signature\) has (a malformed signature|a signature that does not verify)/);
    });

    it('a missing signature line', () => {
      const result = verifyTranscript(textOf(lines.slice(0, 5)));
      expectBad(result, 6, /ends at line 5 without a signature line/);
      expect(result.signed).to.equal(false);
      expect(verifyTranscript(textOf(lines.slice(0, 5)), { requireSignature: false }).ok).to.equal(true);
    });

    it('broken JSON names the line', () => {
      const broken = [...lines];
      broken[3] = broken[3]!.slice(0, -1);
      expectBad(verifyTranscript(textOf(broken)), 4, /line 4 is not valid JSON/);
    });

    it('a line not in canonical form (added whitespace) names that line', () => {
      const spaced = [...lines];
      spaced[2] = spaced[2]!.replace('"type":', '"type": ');
      expectBad(verifyTranscript(textOf(spaced)), 3, /line 3 is not in canonical form/);
      const crlf = lines.map((line) => `${line}\r`);
      expectBad(verifyTranscript(textOf(crlf)), 1, /line 1 is not in canonical form/);
    });

    it('lines with missing or extra fields, bad times and a second header are refused', () => {
      const cases: [number, string, RegExp][] = [
        [2, lines[1]!.replace(/,"prev":"[0-9a-f]{64}"/, ''), /exactly the fields/],
        [2, lines[1]!.replace('"time":"2026-03-01T09:00:01.000Z"', '"time":"yesterday"'), /malformed time/],
        [2, lines[1]!.replace('"type":"key-generated"', '"type":"header"'), /line 2 is a second header/],
        [2, lines[1]!.replace(/"data":\{.*\},"prev"/, '"data":["x"],"prev"'), /line 2 has data that is not an object/],
      ];
      for (const [badLine, line, reason] of cases) {
        const edited = [...lines];
        edited[badLine - 1] = line;
        const result = verifyTranscript(textOf(edited));
        expect(result.ok).to.equal(false);
        expect(result.reason).to.match(reason);
        expect(result.badLine).to.equal(badLine);
      }
    });

    it('an empty text or a non-transcript', () => {
      expectBad(verifyTranscript(''), 1, /empty/);
      expectBad(verifyTranscript('hello\n'), 1, /not valid JSON/);
      const foreign = JSON.stringify({ seq: 0, time: START.toISOString(), type: 'header', data: { format: 'other' }, prev: TRANSCRIPT_ZERO_HASH });
      expectBad(verifyTranscript(`${foreign}\n`, { requireSignature: false }), 1, /not a credbroker-transcript-v1 header/);
    });
  });
});
