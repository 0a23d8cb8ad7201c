/**
 * Time is a parameter (STYLE.md): code asks a Clock, only the composition root creates the
 * system one, and tests drive a {@link ManualClock}.
 */

/** A source of the current time. */
export interface Clock {
  /** The current instant. */
  now(): Date;
}

/** The real wall clock. Only `src/cli` should create it. */
export const systemClock: Clock = Object.freeze({
  now: () => new Date(),
});

/** A clock that moves only when told to; for tests and simulations. */
export class ManualClock implements Clock {
  #nowMs: number;

  /** @param start the initial instant (a Date or milliseconds since the epoch) */
  constructor(start: Date | number) {
    this.#nowMs = typeof start === 'number' ? start : start.getTime();
  }

  now(): Date {
    return new Date(this.#nowMs);
  }

  /** Moves the clock forward by `ms` milliseconds (never backward). */
  advance(ms: number): Date {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot advance a clock by ${ms} ms`);
    this.#nowMs += ms;
    return this.now();
  }

  /** Sets the clock to an instant (it may go backward: tests of clock skew need it). */
  set(instant: Date | number): void {
    this.#nowMs = typeof instant === 'number' ? instant : instant.getTime();
  }
}
