/**
 * The live policy of a running broker: one {@link Policy} at a time, swapped by {@link
 * PolicyHolder.reload}. A reload that fails for any reason keeps the current policy, so a typo
 * in the file never leaves the broker without one (or with half of one).
 */
import { EventEmitter } from 'node:events';
import { resolve } from 'node:path';
import { ConfigError } from '../config/index.js';
import { loadPolicyFile } from './load-policy-file.js';
import type { Policy } from './policy.js';

/** Events of a {@link PolicyHolder}. */
export type PolicyHolderEvents = {
  /**
   * A new policy is current (emitted after the swap). Compare `policy.sha256` with
   * `previous.sha256` to tell a changed file from a re-read of the same one.
   */
  reloaded: [policy: Policy, previous: Policy];
  /** A reload failed; the current policy stays. */
  rejected: [error: ConfigError];
};

/** The result of {@link PolicyHolder.reload}. */
export type PolicyReloadResult =
  | { readonly ok: true; readonly policy: Policy; readonly changed: boolean }
  | { readonly ok: false; readonly error: ConfigError };

/** Holds the current policy and re-reads its file on request. */
export class PolicyHolder extends EventEmitter<PolicyHolderEvents> {
  /** Absolute path of the policy file. */
  readonly path: string;
  #current: Policy;

  /**
   * @param path the policy file, re-read by {@link reload}
   * @param initial the policy in force until the first successful reload
   */
  constructor(path: string, initial: Policy) {
    super();
    this.path = resolve(path);
    this.#current = initial;
  }

  /**
   * Reads the policy file and holds it.
   * @throws ConfigError when the file cannot be read or is not a valid policy
   */
  static load(path: string): PolicyHolder {
    return new PolicyHolder(path, loadPolicyFile(path));
  }

  /** The policy in force. Read it once per decision: a reload may swap it between two reads. */
  get current(): Policy {
    return this.#current;
  }

  /**
   * Re-reads the file. On success the new policy becomes current and 'reloaded' is emitted;
   * on any problem (unreadable, invalid, or a different trust domain, which needs a new CA and
   * a restart) the current policy stays, 'rejected' is emitted and the result says why.
   * Write the file atomically (write a temporary file, then rename): a half-written file is
   * rejected like any invalid one.
   */
  reload(): PolicyReloadResult {
    const previous = this.#current;
    let next: Policy;
    try {
      next = loadPolicyFile(this.path);
      if (next.trustDomain !== previous.trustDomain) {
        throw new ConfigError(this.path, [
          {
            path: 'trustDomain',
            message: `changed from "${previous.trustDomain}" to "${next.trustDomain}": the CA and every issued certificate belong to "${previous.trustDomain}"; a new trust domain needs a new intermediate and a restart`,
          },
        ]);
      }
    } catch (error) {
      const rejected =
        error instanceof ConfigError
          ? error
          : new ConfigError(this.path, [{ path: '', message: `cannot load the policy: ${error instanceof Error ? error.message : String(error)}` }], { cause: error });
      this.emit('rejected', rejected);
      return { ok: false, error: rejected };
    }
    this.#current = next;
    this.emit('reloaded', next, previous);
    return { ok: true, policy: next, changed: next.sha256 !== previous.sha256 };
  }
}
