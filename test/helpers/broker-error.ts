/** Catching the BrokerError an operation must fail with. */
import { expect } from 'chai';
import { BrokerError } from '../../src/core/index.js';

/**
 * Runs `action` (sync or async, or a promise), expects it to fail with a BrokerError and
 * returns that error for further assertions.
 */
export async function catchBrokerError(action: (() => unknown) | Promise<unknown>): Promise<BrokerError> {
  let caught: unknown;
  try {
    await (typeof action === 'function' ? action() : action);
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a BrokerError').to.be.instanceOf(BrokerError);
  return caught as BrokerError;
}
