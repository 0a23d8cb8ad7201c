import { expect } from 'chai';
import type { BrokerError, RandomSource } from '../../../src/core/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { SeededRandom } from '../../helpers/seeded-random.js';

/** Runs `action` (sync or async), expects a BrokerError with `code` and returns it. */
export async function brokerError(action: () => unknown, code: string): Promise<BrokerError> {
  const error = await catchBrokerError(action);
  expect(error.code, error.message).to.equal(code);
  return error;
}

/** A deterministic RandomSource for `label` (see test/helpers/seeded-random.ts). */
export function seededRandom(label: string): RandomSource {
  return new SeededRandom(label);
}

/** A RandomSource that always returns `n` copies of one byte (known-answer tests). */
export function fixedRandom(byte: number): RandomSource {
  return { bytes: (n: number) => Buffer.alloc(n, byte) };
}
