/**
 * Randomness is a parameter (STYLE.md): serials, key ids and join tokens draw from a
 * RandomSource; only the composition root creates the system one.
 */
import { randomBytes } from 'node:crypto';

/** A source of random bytes. */
export interface RandomSource {
  /** `n` random bytes. */
  bytes(n: number): Buffer;
}

/** The operating system's CSPRNG. Only `src/cli` (and code it configures) should create it. */
export const systemRandom: RandomSource = Object.freeze({
  bytes: (n: number) => randomBytes(n),
});
