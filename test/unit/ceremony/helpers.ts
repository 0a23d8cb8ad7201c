import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { BrokerError, type RandomSource } from '../../../src/core/index.js';

/** Runs `action` (sync or async), expects a BrokerError with `code` and returns it. */
export async function brokerError(action: () => unknown, code: string): Promise<BrokerError> {
  let failure: unknown;
  try {
    await action();
  } catch (error) {
    failure = error;
  }
  expect(failure, `expected a BrokerError ${code}`).to.be.instanceOf(BrokerError);
  const error = failure as BrokerError;
  expect(error.code, error.message).to.equal(code);
  return error;
}

/** A deterministic RandomSource: SHA-256 of a label and a counter, so every call differs. */
export function seededRandom(label: string): RandomSource {
  let counter = 0;
  return {
    bytes(n: number): Buffer {
      const out = Buffer.alloc(n);
      for (let filled = 0; filled < n; filled += 32) {
        createHash('sha256').update(`${label}/${counter++}`).digest().copy(out, filled);
      }
      return out;
    },
  };
}

/** A RandomSource that always returns `n` copies of one byte (known-answer tests). */
export function fixedRandom(byte: number): RandomSource {
  return { bytes: (n: number) => Buffer.alloc(n, byte) };
}
