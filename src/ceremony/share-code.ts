/**
 * The text form of one quorum share: what a security officer keeps (in their own 0600 file or a
 * password manager) and gives back at the next ceremony.
 *
 * ```
 * cbshare1-<set>-<m>of<n>-<index>-<share>-<commitment>-<checksum>
 * cbshare1-fivcukrk-2of3-1-vyheh5m5kjluuioib4zxyqvb5ei3ocvhwliqffua4o3hbb5a5mieo-u2g5t2ploiycgepkdjeksxned4-ho7yurdv
 * ```
 *
 * (share 1 of a 2-of-3 split of a 32-character PIN: 112 characters.)
 *
 * | field | content |
 * |---|---|
 * | `cbshare1` | format and version |
 * | set | 5 random bytes naming one split (base32, 8 characters): shares of different splits never combine |
 * | `<m>of<n>` | threshold and number of shares, decimal, `1 <= m <= n <= 16` |
 * | index | this officer's number in the split, `1..n`, decimal |
 * | share | the Shamir share bytes (`y` bytes, then the byte `x`), base32 |
 * | commitment | first 16 bytes of `SHA-256("credbroker-share-commitment-v1\0" ‖ set bytes ‖ secret)`, base32 |
 * | checksum | first 5 bytes of `SHA-256` of the ASCII text before `-<checksum>`, base32 (8 characters) |
 *
 * Base32 is RFC 4648's alphabet in lowercase without padding ({@link base32Encode}): one case,
 * no `-` (the field separator; base64url has one), and none of `0 1 8 9`, so a share is one
 * `[a-z0-9-]` word that survives copying, and typing into a prompt. Input is accepted in any
 * case with surrounding whitespace (a trailing newline) removed.
 *
 * The checksum catches a mistyped or truncated share on its own, before any combination, and
 * names where the share came from. The commitment lets `combineShares` (quorum.ts) tell whether the
 * shares reconstruct the right secret before anyone tries the result on an HSM (where every
 * wrong PIN counts toward locking the token). A commitment is a hash of the secret (salted only
 * with the public set id), so it is safe **only for high-entropy random secrets** such as the
 * generated root PINs it is made for (splitSecret refuses secrets shorter than 16 bytes): a
 * guessable secret could be found by brute force from any single share's commitment.
 *
 * A share is itself a secret: {@link ParsedShare} never prints its bytes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import { BrokerError } from '../core/index.js';
import { base32Decode, base32Encode } from './base32.js';

/** The first field of every share text: format and version. */
export const SHARE_PREFIX = 'cbshare1';
/** Most shares (officers) one split may have. */
export const MAX_QUORUM_SHARES = 16;
/** Random bytes of a set id (8 base32 characters). */
export const SET_ID_BYTES = 5;
/** Bytes of the commitment kept from SHA-256 (128 bits). */
export const COMMITMENT_BYTES = 16;
/** Bytes of the checksum kept from SHA-256 (40 bits: a typo goes unnoticed once in 10^12). */
export const CHECKSUM_BYTES = 5;

const COMMITMENT_TAG = Buffer.from('credbroker-share-commitment-v1\0', 'ascii');
const FIELD_COUNT = 7;
const REDACTED = '[redacted]';

/** Everything a share text carries. */
export interface ShareFields {
  /** The set id, {@link SET_ID_BYTES} bytes as 8 base32 characters. */
  readonly setId: string;
  /** How many shares reconstruct the secret. */
  readonly threshold: number;
  /** How many shares the split made. */
  readonly shares: number;
  /** This share's number, `1..shares`. */
  readonly index: number;
  /** The Shamir share: `y` bytes (one per secret byte), then `x` (1..255). */
  readonly bytes: Uint8Array;
  /** {@link shareCommitment} of the secret. */
  readonly commitment: Uint8Array;
}

/**
 * The commitment to `secret` carried by every share of set `setId`: the first
 * {@link COMMITMENT_BYTES} bytes of `SHA-256("credbroker-share-commitment-v1\0" ‖ set ‖ secret)`.
 * Only safe for high-entropy secrets (see the module comment).
 * @throws RangeError if `setId` is not a set id
 */
export function shareCommitment(setId: string, secret: Uint8Array): Buffer {
  const setBytes = decodeSetId(setId);
  if (setBytes === null) throw new RangeError(`"${setId}" is not a share set id`);
  return createHash('sha256').update(COMMITMENT_TAG).update(setBytes).update(secret).digest().subarray(0, COMMITMENT_BYTES);
}

/**
 * The share text of `fields` (one line, no newline).
 * @throws RangeError if a field is out of range (a bug in the caller: splitSecret never does it)
 */
export function encodeShare(fields: ShareFields): string {
  const { setId, threshold, shares, index, bytes, commitment } = fields;
  if (decodeSetId(setId) === null) throw new RangeError(`"${setId}" is not a share set id`);
  if (!isQuorum(threshold, shares)) throw new RangeError(`${threshold} of ${shares} is not a valid quorum`);
  if (!Number.isInteger(index) || index < 1 || index > shares) throw new RangeError(`share index ${index} is not in 1..${shares}`);
  if (bytes.length < 2 || bytes[bytes.length - 1] === 0) throw new RangeError('share bytes need y bytes and a non-zero x');
  if (commitment.length !== COMMITMENT_BYTES) throw new RangeError(`a commitment has ${COMMITMENT_BYTES} bytes`);
  const body = [SHARE_PREFIX, setId, `${threshold}of${shares}`, String(index), base32Encode(bytes), base32Encode(commitment)].join('-');
  return `${body}-${checksumOf(body)}`;
}

/**
 * Parses a share text (as typed, pasted or read from a file: surrounding whitespace such as a
 * trailing newline is ignored, and so is letter case).
 * @param source where the text came from, for messages: `file:/path`, `prompt`, an officer's name
 * @throws BrokerError `ceremony.share_invalid` (kind invalid) naming `source` and what is wrong:
 *   not a share, cut short, a character that never occurs in a share, a checksum mismatch
 *   (a typo), or a field out of range
 */
export function parseShare(text: string, source: string): ParsedShare {
  return ParsedShare.parse(text, source);
}

/**
 * One parsed share. Its bytes and commitment never appear in `toString`, `toJSON` or
 * `util.inspect`; {@link ParsedShare.dispose} overwrites them with zeros.
 */
export class ParsedShare {
  /** Where the share came from: safe to log. */
  readonly source: string;
  /** The split this share belongs to. */
  readonly setId: string;
  /** How many shares reconstruct the secret. */
  readonly threshold: number;
  /** How many shares the split made. */
  readonly shares: number;
  /** This share's number, `1..shares`. */
  readonly index: number;
  #bytes: Buffer | null;
  readonly #commitment: Buffer;

  private constructor(source: string, fields: Omit<ShareFields, 'bytes' | 'commitment'>, bytes: Buffer, commitment: Buffer) {
    this.source = source;
    this.setId = fields.setId;
    this.threshold = fields.threshold;
    this.shares = fields.shares;
    this.index = fields.index;
    this.#bytes = bytes;
    this.#commitment = commitment;
  }

  /** See {@link parseShare}. */
  static parse(text: string, source: string): ParsedShare {
    const invalid = (reason: string): BrokerError =>
      new BrokerError('invalid', { code: 'ceremony.share_invalid', publicMessage: `the share from ${source} ${reason}` });

    const line = text.trim().toLowerCase();
    if (line.length === 0) throw invalid('is empty');
    if (!line.startsWith('cbshare')) throw invalid(`is not a credbroker share: a share starts with "${SHARE_PREFIX}-"`);
    if (!line.startsWith(`${SHARE_PREFIX}-`)) {
      throw invalid(`has a format this version does not read: it should start with "${SHARE_PREFIX}-"`);
    }
    if (/\s/.test(line)) throw invalid('contains whitespace: a share is a single word on one line');
    const fields = line.split('-');
    if (fields.length !== FIELD_COUNT) {
      throw invalid(`has ${fields.length} fields separated by "-", a share has ${FIELD_COUNT}: is it cut short or joined with another?`);
    }
    const [, setId = '', quorum = '', indexText = '', shareText = '', commitmentText = '', checksum = ''] = fields;
    const stray = firstStrayCharacter(line, [setId, shareText, commitmentText, checksum]);
    if (stray !== null) throw invalid(`is mistyped: ${stray}`);
    const body = line.slice(0, line.length - checksum.length - 1);
    if (checksum !== checksumOf(body)) {
      throw invalid('is mistyped or incomplete: its checksum does not match (compare it character by character with the original)');
    }

    // The checksum matches: what follows catches texts that were made, not mistyped.
    if (decodeSetId(setId) === null) throw invalid(`has a malformed set id "${setId}"`);
    const quorumMatch = /^([1-9]\d?)of([1-9]\d?)$/.exec(quorum);
    const threshold = Number(quorumMatch?.[1]);
    const shares = Number(quorumMatch?.[2]);
    if (quorumMatch === null || !isQuorum(threshold, shares)) {
      throw invalid(`has a malformed quorum "${quorum}": expected <m>of<n> with 1 <= m <= n <= ${MAX_QUORUM_SHARES}`);
    }
    const index = /^[1-9]\d?$/.test(indexText) ? Number(indexText) : Number.NaN;
    if (!(index >= 1 && index <= shares)) throw invalid(`has index "${indexText}", not a number in 1..${shares}`);
    const commitment = base32Decode(commitmentText);
    if (commitment?.length !== COMMITMENT_BYTES) throw invalid('has a malformed commitment');
    const bytes = base32Decode(shareText);
    if (bytes === null || bytes.length < 2 || bytes[bytes.length - 1] === 0) {
      bytes?.fill(0);
      throw invalid('has malformed share bytes');
    }
    return new ParsedShare(source, { setId, threshold, shares, index }, bytes, commitment);
  }

  /**
   * Gives the share bytes (`y` bytes, then `x`) to `use` and returns what it returns. Keep them
   * local to `use`: the view is zeroed on dispose.
   * @throws Error if the share was disposed
   */
  revealBytes<T>(use: (bytes: Uint8Array) => T): T {
    return use(this.#live());
  }

  /** Bytes of the secret this share belongs to. */
  get secretLength(): number {
    return this.#live().length - 1;
  }

  /** True if `other` carries the same commitment (so claims the same secret). */
  sameCommitment(other: ParsedShare): boolean {
    return timingSafeEqual(this.#commitment, other.#commitment);
  }

  /** True if `secret` matches this share's commitment (constant-time comparison). */
  commitsTo(secret: Uint8Array): boolean {
    return timingSafeEqual(shareCommitment(this.setId, secret), this.#commitment);
  }

  /** Overwrites the share bytes with zeros; later use throws. */
  dispose(): void {
    this.#bytes?.fill(0);
    this.#bytes = null;
  }

  /** True once disposed. */
  get disposed(): boolean {
    return this.#bytes === null;
  }

  /** A description without the share: `share 2 of set k5v3xqaa (2 of 3) from file:/x`. */
  toString(): string {
    return `share ${this.index} of set ${this.setId} (${this.threshold} of ${this.shares}) from ${this.source}`;
  }

  toJSON(): Record<string, unknown> {
    return { setId: this.setId, threshold: this.threshold, shares: this.shares, index: this.index, source: this.source, bytes: REDACTED };
  }

  [inspect.custom](): string {
    return `ParsedShare(set=${this.setId}, ${this.threshold}of${this.shares}, index=${this.index}, source=${this.source}, bytes=${REDACTED})`;
  }

  [Symbol.toPrimitive](): string {
    return this.toString();
  }

  #live(): Buffer {
    if (this.#bytes === null) throw new Error(`share ${this.index} from ${this.source} was already disposed`);
    return this.#bytes;
  }
}

/** True for a quorum credbroker accepts: integers, `1 <= threshold <= shares <= 16`. */
export function isQuorum(threshold: number, shares: number): boolean {
  return Number.isInteger(threshold) && Number.isInteger(shares) && threshold >= 1 && threshold <= shares && shares <= MAX_QUORUM_SHARES;
}

function decodeSetId(setId: string): Buffer | null {
  const bytes = base32Decode(setId);
  return bytes?.length === SET_ID_BYTES ? bytes : null;
}

function checksumOf(body: string): string {
  return base32Encode(createHash('sha256').update(body, 'ascii').digest().subarray(0, CHECKSUM_BYTES));
}

/**
 * The first character of a base32 field that base32 never uses, described for the person who
 * typed it (`0`, `1`, `8` and `9` are the usual misreadings of `o`, `l`, `b` and `g`).
 */
function firstStrayCharacter(line: string, base32Fields: readonly string[]): string | null {
  const hints: Readonly<Record<string, string>> = { '0': 'o', '1': 'l', '8': 'b', '9': 'g' };
  // Field positions: the prefix, set id, quorum and index come first; base32Fields are the set
  // id and the last three fields, found by position in the line.
  const [setId = '', share = '', commitment = '', checksum = ''] = base32Fields;
  const starts: [string, number][] = [
    [setId, SHARE_PREFIX.length + 1],
    [checksum, line.length - checksum.length],
    [commitment, line.length - checksum.length - 1 - commitment.length],
    [share, line.length - checksum.length - 1 - commitment.length - 1 - share.length],
  ];
  let first: { position: number; char: string } | null = null;
  for (const [field, start] of starts) {
    const offset = field.search(/[^a-z2-7]/);
    if (offset < 0) continue;
    const position = start + offset + 1;
    if (first === null || position < first.position) first = { position, char: field.charAt(offset) };
  }
  if (first === null) return null;
  const hint = hints[first.char];
  return (
    `character ${first.position} is "${first.char}", which never occurs there in a share` +
    (hint === undefined ? '' : ` (did you mean "${hint}"?)`)
  );
}
