/**
 * The rotation benchmark's agents: N services in this process, each a {@link ServiceCredentials}
 * (the client library of src/agent: its own key, certificate and Rotation/Watch stream; on
 * RENEW_NOW a renewal with a new key, then Watch again with the new certificate), plus what
 * each one lived through in the current round, timed with this process's monotonic clock from
 * the moment the operator's ForceRotate was sent.
 *
 * Waiting is event-driven: every agent event re-checks the condition waited for, and a timer
 * bounds the wait.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { ServiceCredentials } from '../../src/agent/index.js';
import { Secret } from '../../src/core/index.js';

/** One agent and its current round. */
export interface FleetMember {
  readonly index: number;
  readonly spiffeId: string;
  readonly credentials: ServiceCredentials;
  /** The serial the round started with ('' before a round). */
  roundSerial: string;
  /** performance.now() of this round's events; null until they happen. */
  renewNowAt: number | null;
  renewedAt: number | null;
  /** First WATCHING after this round's renewal (the new certificate registered). */
  rewatchedAt: number | null;
  /** Failed steps this round (enroll, renew, watch…), and the first one's message. */
  failures: number;
  firstFailure: string;
  /** Watch streams that ended this round (the old certificate's, once revoked). */
  watchDrops: number;
}

/** How to reach the broker and whom to enroll. */
export interface FleetOptions {
  readonly address: string;
  readonly serverName: string;
  readonly trustBundlePem: string;
  /** SPIFFE IDs of the members, one per agent. */
  readonly spiffeIds: readonly string[];
  /** A fresh join token for `spiffeId` (e.g. the e2e harness's bootstrapToken). */
  joinToken(spiffeId: string): Promise<string>;
  /** Agents enrolling at the same time. */
  readonly parallel: number;
  /** Called after each enrollment with the count so far. */
  onEnrolled?(count: number): void;
}

/** N agents with ServiceCredentials. */
export class RotationFleet {
  readonly members: readonly FleetMember[];
  readonly #changes = new EventEmitter();
  #roundStartedAt = Number.NaN;

  private constructor(members: FleetMember[]) {
    this.members = members;
    this.#changes.setMaxListeners(0);
  }

  /**
   * Enrolls every agent (at most `parallel` at once) and starts its loop and Watch stream.
   * @throws whatever ServiceCredentials.start throws for the first agent that fails (the
   *   ones already started are closed)
   */
  static async start(options: FleetOptions): Promise<RotationFleet> {
    const members: FleetMember[] = [];
    const fleet = new RotationFleet(members);
    let next = 0;
    const enrollOne = async (index: number): Promise<void> => {
      const spiffeId = options.spiffeIds[index]!;
      const joinToken = Secret.from(await options.joinToken(spiffeId));
      const credentials = await ServiceCredentials.start({
        broker: { address: options.address, serverName: options.serverName, trustBundlePem: options.trustBundlePem },
        joinToken,
      });
      const member: FleetMember = { index, spiffeId, credentials, roundSerial: '', renewNowAt: null, renewedAt: null, rewatchedAt: null, failures: 0, firstFailure: '', watchDrops: 0 };
      fleet.#observe(member);
      members.push(member);
      options.onEnrolled?.(members.length);
    };
    try {
      await Promise.all(
        Array.from({ length: Math.max(1, options.parallel) }, async () => {
          while (next < options.spiffeIds.length) await enrollOne(next++);
        }),
      );
    } catch (error) {
      await fleet.close();
      throw error;
    }
    members.sort((a, b) => a.index - b.index);
    return fleet;
  }

  #observe(member: FleetMember): void {
    const events = member.credentials.events;
    const changed = (): void => {
      this.#changes.emit('change');
    };
    events.on('watching', () => {
      if (member.renewedAt !== null && member.rewatchedAt === null) member.rewatchedAt = performance.now();
      changed();
    });
    events.on('renew-now', () => {
      member.renewNowAt ??= performance.now();
      changed();
    });
    events.on('renewed', (_identity, info) => {
      if (info.forced && info.previousSerial === member.roundSerial) member.renewedAt ??= performance.now();
      changed();
    });
    events.on('watch-ended', () => {
      member.watchDrops++;
      changed();
    });
    events.on('failure', (error, stage) => {
      member.failures++;
      if (member.firstFailure === '') member.firstFailure = `${stage}: ${error.publicMessage}`;
      changed();
    });
  }

  /** Members whose Watch stream is registered now. */
  watching(members: readonly FleetMember[] = this.members): number {
    return members.filter((m) => m.credentials.status().watching).length;
  }

  /** Starts a round: forgets the last one's events; times are measured from now. */
  beginRound(): number {
    for (const member of this.members) {
      member.roundSerial = member.credentials.identity.serial;
      member.renewNowAt = null;
      member.renewedAt = null;
      member.rewatchedAt = null;
      member.failures = 0;
      member.firstFailure = '';
      member.watchDrops = 0;
    }
    this.#roundStartedAt = performance.now();
    return this.#roundStartedAt;
  }

  /** When the current round began (performance.now()). */
  get roundStartedAt(): number {
    return this.#roundStartedAt;
  }

  /**
   * Resolves true as soon as `done()` holds (checked now and after every agent event), false
   * after `timeoutMs`; `tick` runs every `tickMs` meanwhile (progress lines).
   */
  waitFor(done: () => boolean, timeoutMs: number, tick?: () => void, tickMs = 1000): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (result: boolean): void => {
        clearTimeout(timer);
        clearInterval(ticker);
        this.#changes.off('change', check);
        resolve(result);
      };
      const check = (): void => {
        if (done()) finish(true);
      };
      const timer = setTimeout(() => {
        finish(done());
      }, timeoutMs);
      const ticker = setInterval(() => tick?.(), tickMs);
      this.#changes.on('change', check);
    });
  }

  /** Stops every agent (renewals, Watch streams, connections). */
  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.credentials.close().catch(() => undefined)));
  }
}
