/**
 * Join tokens: `cbjt1-<id>-<secret>`. The id (16 random bytes, hex) is public: it is what the
 * audit log and operators see. The secret (32 random bytes, base64url) is shown once; the store
 * keeps only SHA-256 of the whole token, so a stolen database enrolls nobody.
 */
import { createHash } from 'node:crypto';
import { BrokerError, type RandomSource } from '../core/index.js';

const FORMAT = /^cbjt1-([0-9a-f]{32})-([A-Za-z0-9_-]{43})$/;

/** A freshly minted token: the secret text (returned once) and what is stored. */
export interface MintedJoinToken {
  readonly token: string;
  readonly id: string;
  readonly hash: string;
}

/** Mints a token from 48 random bytes. */
export function mintJoinToken(random: RandomSource): MintedJoinToken {
  const id = random.bytes(16).toString('hex');
  const token = `cbjt1-${id}-${random.bytes(32).toString('base64url')}`;
  return { token, id, hash: hashJoinToken(token) };
}

/** SHA-256 of the token text, hex: the only form the store keeps. */
export function hashJoinToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Checks the token's form and returns its id and hash.
 * @throws BrokerError unauthenticated `join_token.malformed` (the text is never echoed)
 */
export function parseJoinToken(token: string): { id: string; hash: string } {
  const match = FORMAT.exec(token.trim());
  if (match?.[1] === undefined) {
    throw new BrokerError('unauthenticated', {
      code: 'join_token.malformed',
      publicMessage: 'the join token is not one this broker issues (expected cbjt1-<id>-<secret>, as CreateJoinToken returned it)',
    });
  }
  return { id: match[1], hash: hashJoinToken(token.trim()) };
}
