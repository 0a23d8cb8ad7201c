/**
 * A deterministic RandomSource for tests (STYLE.md: seeded random): SHA-256 in counter mode
 * over a seed, so the same seed always yields the same bytes. Never use it outside tests.
 */
import { createHash } from 'node:crypto';
import type { RandomSource } from '../../src/core/index.js';

/** A RandomSource whose output depends only on `seed` and the sequence of calls. */
export class SeededRandom implements RandomSource {
  readonly #seed: string;
  #counter = 0;

  /** @param seed any text; equal seeds give equal streams */
  constructor(seed: string) {
    this.#seed = seed;
  }

  bytes(n: number): Buffer {
    const chunks: Buffer[] = [];
    let length = 0;
    while (length < n) {
      const block = createHash('sha256').update(`${this.#seed}\u0000${this.#counter++}`).digest();
      chunks.push(block);
      length += block.length;
    }
    return Buffer.concat(chunks).subarray(0, n);
  }
}
