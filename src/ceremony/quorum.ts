/**
 * M-of-N quorum over a secret (the root token's PIN): Shamir's secret sharing over GF(2^8) by
 * the audited `shamir-secret-sharing` library, wrapped in share texts that catch typos, mixed
 * splits and wrong shares before the result is tried on an HSM (share-code.ts has the format).
 *
 * Only for high-entropy random secrets (generated PINs): every share carries a hash commitment
 * to the secret (see share-code.ts), so {@link splitSecret} refuses secrets shorter than
 * {@link MIN_SPLIT_SECRET_BYTES}.
 *
 * Randomness: the set id comes from the {@link RandomSource} passed in; the polynomial
 * coefficients and `x` coordinates come from the library's own CSPRNG (node:crypto), which it
 * does not let callers replace. Buffers this module owns are zeroed after use; the library's
 * internal coefficient arrays are not (it offers no way to), and are left to the garbage collector.
 */
import { combine, split } from 'shamir-secret-sharing';
import { BrokerError, Secret, type RandomSource } from '../core/index.js';
import { base32Encode } from './base32.js';
import { encodeShare, isQuorum, MAX_QUORUM_SHARES, SET_ID_BYTES, shareCommitment, type ParsedShare } from './share-code.js';

// Part of the quorum's API: callers read a share, parse it, combine.
export { parseShare, ParsedShare } from './share-code.js';

/** How a secret is split: `threshold` of `shares` reconstruct it. */
export interface QuorumSpec {
  /** How many shares are made (one per officer), `1..16`. */
  readonly shares: number;
  /** How many shares reconstruct the secret, `1..shares`. 1 is for development only: then every share is the secret. */
  readonly threshold: number;
}

/** Shortest secret {@link splitSecret} accepts (the commitment needs a high-entropy secret). */
export const MIN_SPLIT_SECRET_BYTES = 16;
/** Longest secret {@link splitSecret} accepts (PKCS#11 PINs are far shorter). */
export const MAX_SPLIT_SECRET_BYTES = 256;

/**
 * Checks a quorum: integers with `1 <= threshold <= shares <= 16`.
 * @throws BrokerError `ceremony.quorum_invalid` (kind invalid) saying what is wrong
 */
export function checkQuorumSpec(spec: QuorumSpec): void {
  if (isQuorum(spec.threshold, spec.shares)) return;
  throw new BrokerError('invalid', {
    code: 'ceremony.quorum_invalid',
    publicMessage:
      `a quorum of ${spec.threshold} of ${spec.shares} shares is not possible: ` +
      `use whole numbers with 1 <= threshold <= shares <= ${MAX_QUORUM_SHARES}`,
  });
}

/**
 * Splits `secret` into `spec.shares` share texts, any `spec.threshold` of which reconstruct it
 * with {@link combineShares}. Each text is for one officer, in order (index 1 first); each is a
 * secret in its own right. With a threshold of 1 every share holds the secret itself (by
 * definition any single share reconstructs it): development only.
 * @param random draws the set id ({@link SET_ID_BYTES} bytes)
 * @throws BrokerError `ceremony.quorum_invalid` for a bad spec; `ceremony.secret_length` when the
 *   secret is shorter than {@link MIN_SPLIT_SECRET_BYTES} or longer than {@link MAX_SPLIT_SECRET_BYTES}
 */
export async function splitSecret(secret: Secret, spec: QuorumSpec, random: RandomSource): Promise<string[]> {
  checkQuorumSpec(spec);
  const { shares, threshold } = spec;
  const length = secret.byteLength;
  if (length < MIN_SPLIT_SECRET_BYTES || length > MAX_SPLIT_SECRET_BYTES) {
    throw new BrokerError('invalid', {
      code: 'ceremony.secret_length',
      publicMessage:
        `a secret to split must have ${MIN_SPLIT_SECRET_BYTES} to ${MAX_SPLIT_SECRET_BYTES} bytes ` +
        `(a random PIN of at least 128 bits), this one has ${length}`,
    });
  }
  const setId = base32Encode(random.bytes(SET_ID_BYTES).subarray(0, SET_ID_BYTES));
  // A private copy: the library needs a plain Uint8Array, and the caller may dispose the Secret
  // while the split is under way.
  const copy = secret.revealBytes((bytes) => new Uint8Array(bytes));
  let parts: Uint8Array[] = [];
  try {
    const commitment = shareCommitment(setId, copy);
    parts = threshold === 1 ? degreeZeroShares(copy, shares) : await split(copy, shares, threshold);
    return parts.map((bytes, position) => encodeShare({ setId, threshold, shares, index: position + 1, bytes, commitment }));
  } finally {
    copy.fill(0);
    for (const part of parts) part.fill(0);
  }
}

/**
 * Reconstructs the secret from shares of one split, in memory, and checks it against the
 * shares' commitment, so a wrong result never reaches an HSM. The shares are left intact (the
 * caller disposes them); every buffer made here is zeroed. The Secret's source is
 * `quorum:<set id>`.
 *
 * Checks, in this order:
 * @throws BrokerError (kind invalid) with code
 *   - `ceremony.quorum_not_met` when no share is given
 *   - `ceremony.share_mismatch` when shares come from different splits (both sources named)
 *   - `ceremony.share_duplicate` when two shares have the same index (both sources named)
 *   - `ceremony.quorum_not_met` with fewer distinct shares than the threshold:
 *     "2 of 3 shares are needed, 1 given"
 *   - `ceremony.share_wrong` when the shares do not reconstruct the committed secret (at least
 *     one was altered), or two of them carry the same `x`
 */
export async function combineShares(shares: readonly ParsedShare[]): Promise<Secret> {
  const [first] = shares;
  if (first === undefined) {
    throw new BrokerError('invalid', { code: 'ceremony.quorum_not_met', publicMessage: 'no shares given' });
  }
  for (const share of shares) checkSameSplit(first, share);
  const byIndex = new Map<number, ParsedShare>();
  for (const share of shares) {
    const earlier = byIndex.get(share.index);
    if (earlier !== undefined) {
      throw new BrokerError('invalid', {
        code: 'ceremony.share_duplicate',
        publicMessage:
          `the shares from ${earlier.source} and ${share.source} are both share ${share.index} of set ${share.setId}: ` +
          'each share counts once; bring a share of another officer',
      });
    }
    byIndex.set(share.index, share);
  }
  if (shares.length < first.threshold) {
    throw new BrokerError('invalid', {
      code: 'ceremony.quorum_not_met',
      publicMessage: `${first.threshold} of ${first.shares} shares are needed, ${shares.length} given`,
    });
  }

  // Plain Uint8Array copies: the library checks `constructor === Uint8Array` (a Buffer fails).
  const parts = shares.map((share) => share.revealBytes((bytes) => new Uint8Array(bytes)));
  let secretBytes: Uint8Array | null = null;
  try {
    const xs = new Map<number, ParsedShare>();
    parts.forEach((part, position) => {
      const share = shares[position] ?? first;
      const x = part[part.length - 1] ?? 0;
      const other = xs.get(x);
      if (other !== undefined) {
        throw wrongShares(`the shares from ${other.source} and ${share.source} carry the same x coordinate`, true);
      }
      xs.set(x, share);
    });
    secretBytes = parts.length === 1 ? (parts[0] ?? new Uint8Array(0)).slice(0, -1) : await combine(parts);
    if (!first.commitsTo(secretBytes)) throw wrongShares("the reconstructed secret does not match the shares' commitment", false);
    return Secret.from(secretBytes, `quorum:${first.setId}`);
  } finally {
    secretBytes?.fill(0);
    for (const part of parts) part.fill(0);
  }
}

/** Every share of a threshold-1 split is `secret ‖ x` (a polynomial of degree 0), with x = index. */
function degreeZeroShares(secret: Uint8Array, shares: number): Uint8Array[] {
  return Array.from({ length: shares }, (_, position) => {
    const part = new Uint8Array(secret.length + 1);
    part.set(secret);
    part[secret.length] = position + 1;
    return part;
  });
}

function checkSameSplit(first: ParsedShare, share: ParsedShare): void {
  const describe = (s: ParsedShare): string => `set ${s.setId} (${s.threshold} of ${s.shares})`;
  if (share.setId !== first.setId) {
    throw new BrokerError('invalid', {
      code: 'ceremony.share_mismatch',
      publicMessage:
        `the share from ${first.source} belongs to ${describe(first)} but the share from ${share.source} to ` +
        `${describe(share)}: all shares must come from the same split`,
    });
  }
  if (
    share.threshold !== first.threshold ||
    share.shares !== first.shares ||
    share.secretLength !== first.secretLength ||
    !share.sameCommitment(first)
  ) {
    throw new BrokerError('invalid', {
      code: 'ceremony.share_mismatch',
      publicMessage:
        `the shares from ${first.source} and ${share.source} both name set ${share.setId} but disagree on ` +
        'its quorum, secret length or commitment: at least one of them was altered',
    });
  }
}

/** `share_wrong`; `detail` goes to the log, and into the public message when `showDetail`. */
function wrongShares(detail: string, showDetail: boolean): BrokerError {
  const message = 'the shares do not reconstruct the root PIN: at least one share is wrong';
  return new BrokerError('invalid', {
    code: 'ceremony.share_wrong',
    publicMessage: showDetail ? `${message} (${detail})` : message,
    logMessage: `${message} (${detail})`,
  });
}
