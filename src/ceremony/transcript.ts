/**
 * The ceremony transcript: a public, append-only record of what a key ceremony did, as
 * hash-chained JSON lines signed at the end with an HSM key through a {@link Signer}.
 *
 * ## Format (`credbroker-transcript-v1`)
 *
 * UTF-8 text, one JSON object per line, every line ending in `\n`. Each line is exactly
 * `JSON.stringify({ seq, time, type, data, prev })` with the keys in that order:
 *
 * - `seq`: 0 for the first line, then 1, 2, … (the line number minus one);
 * - `time`: when the line was written, ISO 8601 UTC with milliseconds, from the Clock passed in;
 * - `type`: `header` (line 1 only), `signature` (the last line only), or the caller's event type;
 * - `data`: an object; the header's starts with `format: "credbroker-transcript-v1"`;
 * - `prev`: hex SHA-256 of the previous line's bytes (its UTF-8, without the `\n`), or 64 zeros
 *   on the first line.
 *
 * Verification hashes the line bytes exactly as read and also requires every line to be in that
 * canonical form (no added whitespace, key order, escapes), so each transcript has one text.
 *
 * The last line, type `signature`, has `data: { algorithm, publicKey, key, signature }`:
 * the JOSE algorithm name, the signer's SubjectPublicKeyInfo (DER, base64), the caller's
 * description of the key (label, token, …), and the signature (base64; ECDSA as raw `r ‖ s`, as
 * {@link Signer.sign} returns it) over the UTF-8 bytes of
 * `"credbroker-transcript-v1\n" + <the signature line's prev>`. So the signature covers every
 * earlier line through the chain. It does not cover the signature line's own `time` and `key`
 * fields: trust the signer by its public key (pin it with `verifyTranscript`'s `publicKey`),
 * never by the `key` description.
 *
 * ## What goes in
 *
 * A transcript is a public record (mode 0644). Callers put only labels, ids, fingerprints,
 * serial numbers, officer names, hashes of files and outcomes in it; never a PIN, a share, a
 * join token or key material. Secrets, parsed shares, byte arrays and KeyObjects are refused.
 */
import { createHash, KeyObject } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { unlink } from 'node:fs/promises';
import {
  ALGORITHM_OF_KEY_TYPE,
  BrokerError,
  Secret,
  keyTypeOf,
  publicKeyFromSpki,
  spkiOf,
  toBrokerError,
  verifySignature,
  type Clock,
  type SignatureAlgorithm,
  type Signer,
} from '../core/index.js';
import { createExclusiveFile, fileError, syncDirectoryOf, writeFully } from './exclusive-file.js';
import { ParsedShare } from './share-code.js';

/** The format name: in the header's `data.format` and at the start of the signed message. */
export const TRANSCRIPT_FORMAT = 'credbroker-transcript-v1';
/** Mode of a transcript file: a public record, readable by all, written by its owner. */
export const TRANSCRIPT_FILE_MODE = 0o644;
/** The `prev` of the first line. */
export const TRANSCRIPT_ZERO_HASH = '0'.repeat(64);

const SIGNED_PREFIX = `${TRANSCRIPT_FORMAT}\n`;
const RESERVED_TYPES = new Set(['header', 'signature']);
const EVENT_TYPE = /^[a-z][a-z0-9_.-]{0,63}$/;
const HEX_HASH = /^[0-9a-f]{64}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const LINE_KEYS = ['seq', 'time', 'type', 'data', 'prev'] as const;
const SIGNATURE_KEYS = ['algorithm', 'publicKey', 'key', 'signature'] as const;
const ALGORITHMS: ReadonlySet<string> = new Set<SignatureAlgorithm>(['ES256', 'ES384', 'RS256', 'EdDSA']);

/** One line of a transcript, as written and as read back. */
export interface TranscriptEntry {
  /** 0 for the header, then 1, 2, …. */
  readonly seq: number;
  /** ISO 8601 UTC with milliseconds. */
  readonly time: string;
  /** `header`, `signature` or the caller's event type. */
  readonly type: string;
  /** The line's data, as JSON stores it (deeply frozen). */
  readonly data: Readonly<Record<string, unknown>>;
  /** Hex SHA-256 of the previous line, or {@link TRANSCRIPT_ZERO_HASH} for the header. */
  readonly prev: string;
}

type WriterState = 'open' | 'signing' | 'signed' | 'closed' | 'failed';

/**
 * Writes a transcript: one line per call, each fsync'd before the call resolves, concurrent
 * calls written one after another in call order. After {@link TranscriptWriter.sign} nothing
 * more can be appended.
 */
export class TranscriptWriter {
  /** The transcript file. */
  readonly path: string;
  readonly #clock: Clock;
  readonly #handle: FileHandle;
  #state: WriterState = 'open';
  #nextSeq = 0;
  #sizeBytes = 0;
  #headHash = TRANSCRIPT_ZERO_HASH;
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(path: string, clock: Clock, handle: FileHandle) {
    this.path = path;
    this.#clock = clock;
    this.#handle = handle;
  }

  /**
   * Creates the transcript file (never overwriting one: O_EXCL), mode 0644 whatever the umask,
   * and writes the header line `{ format: "credbroker-transcript-v1", ...header }` (the ceremony's
   * name, the plan's SHA-256, …; no secrets).
   * @throws BrokerError `ceremony.transcript_data` (invalid) if `header` has a `format` field or
   *   a value that may not go in a transcript; `ceremony.output_exists` (conflict) naming the file;
   *   `ceremony.output_failed` naming the file and the OS reason. Nothing is left behind.
   */
  static async create(path: string, clock: Clock, header: Record<string, unknown>): Promise<TranscriptWriter> {
    if (Object.hasOwn(header, 'format')) {
      throw dataError('the transcript header may not set "format": the writer records it');
    }
    const headerData = toTranscriptData({ format: TRANSCRIPT_FORMAT, ...header }, 'header');
    const handle = await createExclusiveFile(path, TRANSCRIPT_FILE_MODE, 'transcript');
    const writer = new TranscriptWriter(path, clock, handle);
    try {
      await writer.#writeLine('header', headerData);
      await syncDirectoryOf(path);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(path).catch(() => undefined);
      throw error instanceof BrokerError ? error : fileError(`cannot write the transcript ${path}`, error);
    }
    return writer;
  }

  /** Hex SHA-256 of the last line written (the header's once created). */
  get headHash(): string {
    return this.#headHash;
  }

  /**
   * Appends one line `{ seq, time, type, data, prev }`, written and fsync'd before the promise
   * resolves. `data` is serialised at the call (later changes to the object are not recorded);
   * `time` is read from the clock when the line is written.
   * @param type an event type: lowercase letters, digits, `.`, `_`, `-`, at most 64 characters,
   *   starting with a letter; not `header` or `signature`
   * @param data labels, ids, fingerprints, officer names: never secrets (see the module comment)
   * @returns the entry as written
   * @throws BrokerError `ceremony.transcript_type` / `ceremony.transcript_data` (invalid) for a bad
   *   type or data; `ceremony.transcript_signed` (conflict) once {@link sign} was called;
   *   `ceremony.transcript_closed` (conflict) after {@link close} or a failed write;
   *   `ceremony.output_failed` when the write fails (the partial line is cut off and the
   *   writer refuses further lines)
   */
  append(type: string, data: Record<string, unknown>): Promise<TranscriptEntry> {
    try {
      if (!EVENT_TYPE.test(type) || RESERVED_TYPES.has(type)) {
        throw new BrokerError('invalid', {
          code: 'ceremony.transcript_type',
          publicMessage:
            `"${type}" is not a transcript event type: use lowercase letters, digits, ".", "_" or "-" ` +
            '(at most 64, starting with a letter); "header" and "signature" are reserved',
        });
      }
      this.#checkWritable('append to');
      const lineData = toTranscriptData(data, type);
      return this.#enqueue(() => this.#writeLine(type, lineData));
    } catch (error) {
      return Promise.reject(toBrokerError(error));
    }
  }

  /**
   * Waits for pending appends, then signs the chain head with `signer` and writes the final
   * `signature` line (see the module comment), verifies the signature in software first, and
   * closes the file. Appends called after `sign` are refused. If the signer fails, nothing is
   * written and `sign` may be called again.
   * @param keyDescription what the key is (label, token, certificate fingerprint): no secrets
   * @throws BrokerError from the signer; `ceremony.transcript_signature_invalid` (internal) if the
   *   signature does not verify; the errors of {@link append} otherwise
   */
  sign(signer: Signer, keyDescription: Record<string, unknown>): Promise<void> {
    try {
      this.#checkWritable('sign');
      const key = toTranscriptData(keyDescription, 'signature key description');
      this.#state = 'signing';
      return this.#enqueue(async () => {
        // An append queued before sign may have failed: never ask the HSM to sign a broken file.
        if (this.#state !== 'signing') this.#checkWritable('sign');
        try {
          const prev = this.#headHash;
          const message = Buffer.from(SIGNED_PREFIX + prev, 'utf8');
          const signature = await signer.sign(message);
          if (!verifySignature(signer.algorithm, signer.publicKey, message, signature)) {
            throw new BrokerError('internal', {
              code: 'ceremony.transcript_signature_invalid',
              publicMessage: `the signature of ${signer.description} over the transcript does not verify; nothing was written`,
            });
          }
          await this.#writeLine('signature', {
            algorithm: signer.algorithm,
            publicKey: spkiOf(signer.publicKey).toString('base64'),
            key,
            signature: Buffer.from(signature).toString('base64'),
          });
        } catch (error) {
          if (this.#state === 'signing') this.#state = 'open';
          throw toBrokerError(error);
        }
        this.#state = 'signed';
        await this.#handle.close();
      });
    } catch (error) {
      return Promise.reject(toBrokerError(error));
    }
  }

  /**
   * Waits for pending lines and closes the file without signing (an aborted ceremony: the
   * unsigned transcript still verifies with `requireSignature: false`). Does nothing once
   * signed or closed.
   */
  async close(): Promise<void> {
    await this.#tail;
    if (this.#state === 'signed' || this.#state === 'closed') return;
    // A failed write has closed the handle already.
    const wasOpen = this.#state !== 'failed';
    this.#state = 'closed';
    if (wasOpen) await this.#handle.close();
  }

  #checkWritable(action: string): void {
    switch (this.#state) {
      case 'open':
        return;
      case 'signing':
      case 'signed':
        throw new BrokerError('conflict', {
          code: 'ceremony.transcript_signed',
          publicMessage: `cannot ${action} the transcript ${this.path}: it is signed (or being signed), nothing may follow the signature`,
        });
      case 'closed':
      case 'failed':
        throw new BrokerError('conflict', {
          code: 'ceremony.transcript_closed',
          publicMessage: `cannot ${action} the transcript ${this.path}: it was closed${this.#state === 'failed' ? ' after a failed write' : ''}`,
        });
    }
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(task);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #writeLine(type: string, data: Readonly<Record<string, unknown>>): Promise<TranscriptEntry> {
    if (this.#state === 'failed' || this.#state === 'closed') this.#checkWritable('write to');
    const entry: TranscriptEntry = Object.freeze({
      seq: this.#nextSeq,
      time: this.#clock.now().toISOString(),
      type,
      data,
      prev: this.#headHash,
    });
    const line = serialiseLine(entry);
    const bytes = Buffer.from(`${line}\n`, 'utf8');
    try {
      await writeFully(this.#handle, bytes, this.#sizeBytes);
      await this.#handle.sync();
    } catch (error) {
      this.#state = 'failed';
      // Cut off a partial line so the file stays a valid (unsigned) transcript.
      await this.#handle.truncate(this.#sizeBytes).catch(() => undefined);
      await this.#handle.close().catch(() => undefined);
      throw fileError(`cannot write to the transcript ${this.path}`, error);
    }
    this.#sizeBytes += bytes.length;
    this.#headHash = sha256Hex(line);
    this.#nextSeq += 1;
    return entry;
  }
}

/** Options of {@link verifyTranscript}. */
export interface VerifyTranscriptOptions {
  /** The key the transcript must be signed with (e.g. the root CA's); any key if absent. */
  readonly publicKey?: KeyObject;
  /** Whether an unsigned transcript fails. Default true. */
  readonly requireSignature?: boolean;
}

/** The result of {@link verifyTranscript}. */
export interface TranscriptVerification {
  /** True if every line checks out (and the signature, when required or present). */
  readonly ok: boolean;
  /** Lines in the text (a last line without `\n` counts). */
  readonly lines: number;
  /** The first bad line, 1-based (`lines + 1` when the signature line is missing). */
  readonly badLine?: number;
  /** What is wrong, naming the line. */
  readonly reason?: string;
  /** True if a signature line was found and its signature verifies (and the pinned key matches). */
  readonly signed: boolean;
  /** Hex SHA-256 of the signature line's public key (SPKI DER), when it has a readable one. */
  readonly publicKeySha256?: string;
  /** The lines before the first bad one (all of them when ok), header and signature included. */
  readonly entries: readonly TranscriptEntry[];
}

type LineResult = { readonly entry: TranscriptEntry } | { readonly reason: string };

/**
 * Verifies a transcript's text (the file decoded as UTF-8): canonical JSON lines, `seq` in order,
 * the hash chain, one header first, and the signature line last with a valid signature (by the
 * pinned key, if given). Never throws for bad input.
 *
 * The first bad line is named. A line whose `prev` does not match the hash of the line before it
 * means that earlier line was changed or this one was; when every later line still chains and a
 * later signature (if any) verifies, the later line is intact, so the line *before* the break is
 * reported as modified. Otherwise the line where the chain breaks is reported. Deleted, inserted
 * and reordered lines show up as a wrong `seq` at the first line out of place.
 */
export function verifyTranscript(text: string, options: VerifyTranscriptOptions = {}): TranscriptVerification {
  const requireSignature = options.requireSignature ?? true;
  const rawLines = text.split('\n');
  const terminated = rawLines[rawLines.length - 1] === '';
  if (terminated) rawLines.pop();
  const lines = rawLines.length;
  const entries: TranscriptEntry[] = [];
  let publicKeySha256: string | undefined;

  const result = (badLine: number | undefined, reason: string | undefined, signed: boolean): TranscriptVerification => ({
    ok: badLine === undefined,
    lines,
    ...(badLine === undefined ? {} : { badLine }),
    ...(reason === undefined ? {} : { reason }),
    signed,
    ...(publicKeySha256 === undefined ? {} : { publicKeySha256 }),
    entries: Object.freeze(entries.slice(0, badLine === undefined ? entries.length : badLine - 1)),
  });

  if (lines === 0) return result(1, 'the transcript is empty', false);
  for (let index = 0; index < lines; index++) {
    const lineNumber = index + 1;
    const line = rawLines[index] ?? '';
    const previous = entries[index - 1];
    if (previous?.type === 'signature') {
      return result(lineNumber, `line ${lineNumber} follows the signature on line ${index}: nothing may be added after it`, false);
    }
    if (!terminated && lineNumber === lines) {
      return result(lineNumber, `line ${lineNumber} does not end with a newline: the transcript was cut short`, false);
    }
    const parsed = parseLine(line, lineNumber);
    if ('reason' in parsed) return result(lineNumber, parsed.reason, false);
    const { entry } = parsed;
    const expectedPrev = index === 0 ? TRANSCRIPT_ZERO_HASH : sha256Hex(rawLines[index - 1] ?? '');
    if (entry.prev !== expectedPrev) {
      if (index === 0) return result(1, 'line 1 (the header) must have a prev of 64 zeros', false);
      if (restIsIntact(rawLines, index)) {
        return result(index, `line ${index} was modified: line ${lineNumber} records a different hash for it`, false);
      }
      return result(lineNumber, `line ${lineNumber} does not chain to line ${index}: its prev is not the SHA-256 of line ${index}`, false);
    }
    if (index === 0) {
      if (entry.type !== 'header' || entry.data['format'] !== TRANSCRIPT_FORMAT) {
        return result(1, `line 1 is not a ${TRANSCRIPT_FORMAT} header`, false);
      }
    } else if (entry.type === 'header') {
      return result(lineNumber, `line ${lineNumber} is a second header`, false);
    }
    if (entry.type === 'signature') {
      const signature = checkSignature(entry, lineNumber, options.publicKey);
      if (signature.publicKeySha256 !== undefined) publicKeySha256 = signature.publicKeySha256;
      if (signature.reason !== undefined) return result(lineNumber, signature.reason, false);
    }
    entries.push(entry);
  }
  const signed = entries[entries.length - 1]?.type === 'signature';
  if (!signed && requireSignature) {
    return result(lines + 1, `the transcript ends at line ${lines} without a signature line`, false);
  }
  return result(undefined, undefined, signed);
}

/** Parses and checks one line on its own: JSON, shape, canonical form, `seq`. */
function parseLine(line: string, lineNumber: number): LineResult {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { reason: `line ${lineNumber} is not valid JSON` };
  }
  if (!isPlainObject(value)) return { reason: `line ${lineNumber} is not a JSON object` };
  const keys = Object.keys(value);
  if (keys.length !== LINE_KEYS.length || keys.some((key, position) => key !== LINE_KEYS[position])) {
    return { reason: `line ${lineNumber} must have exactly the fields ${LINE_KEYS.join(', ')} in that order` };
  }
  const { seq, time, type, data, prev } = value;
  if (seq !== lineNumber - 1) {
    return { reason: `line ${lineNumber} has seq ${JSON.stringify(seq)}, expected ${lineNumber - 1}: lines were deleted, inserted or reordered` };
  }
  if (typeof time !== 'string' || !ISO_TIME.test(time) || Number.isNaN(Date.parse(time)) || new Date(time).toISOString() !== time) {
    return { reason: `line ${lineNumber} has a malformed time` };
  }
  if (typeof type !== 'string' || (!EVENT_TYPE.test(type) && !RESERVED_TYPES.has(type))) {
    return { reason: `line ${lineNumber} has a malformed type` };
  }
  if (!isPlainObject(data)) return { reason: `line ${lineNumber} has data that is not an object` };
  if (typeof prev !== 'string' || !HEX_HASH.test(prev)) return { reason: `line ${lineNumber} has a malformed prev hash` };
  const entry: TranscriptEntry = deepFreeze({ seq: lineNumber - 1, time, type, data, prev });
  if (serialiseLine(entry) !== line) {
    return { reason: `line ${lineNumber} is not in canonical form (whitespace, escapes or number format differ from what the writer produces)` };
  }
  return { entry };
}

/**
 * True if the lines from `breakIndex` (0-based) on parse and chain to each other, and a signature
 * line among them verifies: then the line at `breakIndex` is as written, and the break is the
 * previous line's doing.
 */
function restIsIntact(rawLines: readonly string[], breakIndex: number): boolean {
  for (let index = breakIndex; index < rawLines.length; index++) {
    const parsed = parseLine(rawLines[index] ?? '', index + 1);
    if ('reason' in parsed) return false;
    if (index > breakIndex && parsed.entry.prev !== sha256Hex(rawLines[index - 1] ?? '')) return false;
    if (parsed.entry.type === 'signature') {
      return index === rawLines.length - 1 && checkSignature(parsed.entry, index + 1, undefined).reason === undefined;
    }
  }
  return true;
}

/** Checks a signature line; the reason is undefined when it verifies (by the pinned key, if any). */
function checkSignature(
  entry: TranscriptEntry,
  lineNumber: number,
  pinned: KeyObject | undefined,
): { readonly reason?: string; readonly publicKeySha256?: string } {
  const bad = (what: string): { reason: string } => ({ reason: `line ${lineNumber} (the signature) ${what}` });
  const keys = Object.keys(entry.data);
  if (keys.length !== SIGNATURE_KEYS.length || SIGNATURE_KEYS.some((key) => !keys.includes(key))) {
    return bad(`must have exactly the data fields ${SIGNATURE_KEYS.join(', ')}`);
  }
  const { algorithm, publicKey, key, signature } = entry.data;
  if (typeof algorithm !== 'string' || !ALGORITHMS.has(algorithm)) return bad('names an unknown algorithm');
  if (!isPlainObject(key)) return bad('has a key description that is not an object');
  const spki = decodeBase64(publicKey);
  if (spki === null) return bad('has a malformed public key');
  const publicKeySha256 = createHash('sha256').update(spki).digest('hex');
  let signerKey: KeyObject;
  try {
    signerKey = publicKeyFromSpki(spki);
  } catch {
    return { ...bad('has a public key that cannot be read'), publicKeySha256 };
  }
  const keyType = keyTypeOf(signerKey);
  if (keyType === null || ALGORITHM_OF_KEY_TYPE[keyType] !== algorithm) {
    return { ...bad(`names ${algorithm}, which does not fit its ${keyType ?? 'unsupported'} public key`), publicKeySha256 };
  }
  if (pinned !== undefined && !spkiOf(pinned).equals(spki)) {
    const pinnedSha256 = createHash('sha256').update(spkiOf(pinned)).digest('hex');
    return { ...bad(`is by the key with SPKI SHA-256 ${publicKeySha256}, not the expected key ${pinnedSha256}`), publicKeySha256 };
  }
  const signatureBytes = decodeBase64(signature);
  if (signatureBytes === null) return { ...bad('has a malformed signature'), publicKeySha256 };
  const message = Buffer.from(SIGNED_PREFIX + entry.prev, 'utf8');
  if (!verifySignature(ALGORITHM_OF_KEY_TYPE[keyType], signerKey, message, signatureBytes)) {
    return { ...bad('has a signature that does not verify'), publicKeySha256 };
  }
  return { publicKeySha256 };
}

/** The canonical text of a line (without the newline). */
function serialiseLine(entry: TranscriptEntry): string {
  return JSON.stringify({ seq: entry.seq, time: entry.time, type: entry.type, data: entry.data, prev: entry.prev });
}

/**
 * `data` as JSON stores it, deeply frozen: refuses values that must not or cannot go in a
 * public record (secrets, shares, bytes, keys, BigInt, cycles).
 */
function toTranscriptData(data: Record<string, unknown>, what: string): Readonly<Record<string, unknown>> {
  if (!isPlainObject(data)) throw dataError(`the transcript data of ${what} must be a plain object`);
  let json: string;
  try {
    json = JSON.stringify(data, function refuseSecrets(this: Record<string, unknown>, key: string, value: unknown): unknown {
      // `value` has already been through toJSON (a Secret's says "[redacted]"): look at the original.
      const original = this[key];
      if (original instanceof Secret || original instanceof ParsedShare) {
        throw dataError(`the transcript data of ${what} has a secret in field "${key}": a transcript is public, never record secrets`);
      }
      if (ArrayBuffer.isView(original) || original instanceof ArrayBuffer || original instanceof KeyObject) {
        throw dataError(
          `the transcript data of ${what} has bytes or a key in field "${key}": record a fingerprint or an encoded public value instead`,
        );
      }
      return value;
    });
  } catch (error) {
    if (error instanceof BrokerError) throw error;
    throw dataError(`the transcript data of ${what} cannot be stored as JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return deepFreeze(JSON.parse(json) as Record<string, unknown>);
}

function dataError(message: string): BrokerError {
  return new BrokerError('invalid', { code: 'ceremony.transcript_data', publicMessage: message });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Canonical base64 (what `Buffer#toString('base64')` writes) to bytes, or null. */
function decodeBase64(value: unknown): Buffer | null {
  if (typeof value !== 'string' || value.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return null;
  const bytes = Buffer.from(value, 'base64');
  return bytes.toString('base64') === value ? bytes : null;
}

function sha256Hex(line: string): string {
  return createHash('sha256').update(line, 'utf8').digest('hex');
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
