/**
 * Timers are a parameter too (STYLE.md "Time and randomness are parameters"): code that waits
 * asks a {@link Scheduler}; the composition root creates the system one and tests drive a
 * {@link ManualScheduler} together with a {@link ManualClock}, so no test sleeps.
 */
import type { Clock } from './clock.js';

/** A timer that was set; cancelling it twice, or after it fired, does nothing. */
export interface ScheduledTask {
  /** Stops the timer from firing. */
  cancel(): void;
}

/** What a timer runs. A returned promise is awaited by {@link ManualScheduler.advance}. */
export type ScheduledFunction = () => void | Promise<void>;

/** Sets one-shot timers. */
export interface Scheduler {
  /**
   * Runs `fn` once, `delayMs` milliseconds from now (negative and non-finite delays count as 0). Errors thrown
   * or rejected by `fn` are the caller's to handle inside `fn`; the scheduler swallows them so a
   * timer never crashes the process.
   */
  setTimeout(fn: ScheduledFunction, delayMs: number): ScheduledTask;
}

/** Options of {@link SystemScheduler}. */
export interface SystemSchedulerOptions {
  /**
   * Unref every timer, so pending timers alone do not keep the process alive (right for a
   * library embedded in a service). Default false (right for a daemon such as the agent).
   */
  readonly unref?: boolean;
}

/** Longest delay Node's timers take (2^31 − 1 ms, ≈ 24.8 days); longer ones are chained. */
export const MAX_TIMER_DELAY_MS = 2_147_483_647;

/** Real timers. Only the composition root (src/cli, or a library's entry point) creates one. */
export class SystemScheduler implements Scheduler {
  readonly #unref: boolean;

  constructor(options: SystemSchedulerOptions = {}) {
    this.#unref = options.unref ?? false;
  }

  setTimeout(fn: ScheduledFunction, delayMs: number): ScheduledTask {
    let timer: NodeJS.Timeout | null = null;
    let cancelled = false;
    const arm = (remainingMs: number): void => {
      const step = Math.min(remainingMs, MAX_TIMER_DELAY_MS);
      timer = setTimeout(() => {
        if (cancelled) return;
        if (remainingMs > step) {
          arm(remainingMs - step);
          return;
        }
        timer = null;
        runSwallowing(fn);
      }, step);
      if (this.#unref) timer.unref();
    };
    arm(clampDelay(delayMs));
    return {
      cancel: () => {
        cancelled = true;
        if (timer !== null) clearTimeout(timer);
        timer = null;
      },
    };
  }
}

/** A scheduler on real timers that keeps the process alive while timers are pending. */
export const systemScheduler: Scheduler = new SystemScheduler();

/** A clock {@link ManualScheduler} can move: {@link ManualClock} is one. */
export interface AdvanceableClock extends Clock {
  /** Moves the clock forward by `ms` (>= 0). */
  advance(ms: number): unknown;
}

interface ManualTimer {
  readonly dueMs: number;
  readonly sequence: number;
  readonly fn: ScheduledFunction;
  cancelled: boolean;
}

/** Upper bound of timers one {@link ManualScheduler.advance} fires: a guard against a timer that re-arms itself at 0 ms forever. */
export const MAX_TIMERS_PER_ADVANCE = 10_000;

/**
 * Timers on a {@link AdvanceableClock} that fire only when a test advances time. Timers fire in
 * order of due time (then of creation); the clock is moved to each timer's due time before it
 * runs, so code reading the clock inside a timer sees the instant it was meant to run at.
 */
export class ManualScheduler implements Scheduler {
  readonly #clock: AdvanceableClock;
  #timers: ManualTimer[] = [];
  #sequence = 0;

  constructor(clock: AdvanceableClock) {
    this.#clock = clock;
  }

  /** The clock this scheduler moves. */
  get clock(): Clock {
    return this.#clock;
  }

  setTimeout(fn: ScheduledFunction, delayMs: number): ScheduledTask {
    const timer: ManualTimer = { dueMs: this.#clock.now().getTime() + clampDelay(delayMs), sequence: this.#sequence++, fn, cancelled: false };
    this.#timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
        this.#timers = this.#timers.filter((t) => t !== timer);
      },
    };
  }

  /** Timers set and neither fired nor cancelled. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Milliseconds from now until the next timer is due (0 if one is due now), or null when none is set. */
  nextDelayMs(): number | null {
    const next = this.#next();
    return next === undefined ? null : Math.max(0, next.dueMs - this.#clock.now().getTime());
  }

  /**
   * Moves the clock forward by `ms`, firing every timer that falls due on the way (including
   * timers those timers set), in order. Resolves once each fired function's promise (if it
   * returned one) has settled, and the clock stands at the start instant + `ms`.
   * @throws RangeError for a negative or non-finite `ms`, or when more than
   *   {@link MAX_TIMERS_PER_ADVANCE} timers fire (a timer loop that never lets time pass)
   */
  async advance(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot advance a scheduler by ${ms} ms`);
    const targetMs = this.#clock.now().getTime() + ms;
    let fired = 0;
    for (;;) {
      const next = this.#next();
      if (next === undefined || next.dueMs > targetMs) break;
      if (++fired > MAX_TIMERS_PER_ADVANCE) throw new RangeError(`more than ${MAX_TIMERS_PER_ADVANCE} timers fired in one advance: a timer keeps re-arming itself without letting time pass`);
      this.#timers = this.#timers.filter((t) => t !== next);
      this.#moveTo(next.dueMs);
      await settle(next.fn);
    }
    this.#moveTo(targetMs);
  }

  /** Advances to the next timer's due time and fires the timers due then; false when no timer is set. */
  async runNext(): Promise<boolean> {
    const delay = this.nextDelayMs();
    if (delay === null) return false;
    await this.advance(delay);
    return true;
  }

  #next(): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const timer of this.#timers) {
      if (best === undefined || timer.dueMs < best.dueMs || (timer.dueMs === best.dueMs && timer.sequence < best.sequence)) best = timer;
    }
    return best;
  }

  #moveTo(instantMs: number): void {
    const delta = instantMs - this.#clock.now().getTime();
    if (delta > 0) this.#clock.advance(delta);
  }
}

function clampDelay(delayMs: number): number {
  return Number.isFinite(delayMs) && delayMs > 0 ? Math.ceil(delayMs) : 0;
}

function runSwallowing(fn: ScheduledFunction): void {
  try {
    const result = fn();
    if (result instanceof Promise) result.catch(() => undefined);
  } catch {
    // A timer's own errors are its business (see Scheduler.setTimeout).
  }
}

async function settle(fn: ScheduledFunction): Promise<void> {
  try {
    await fn();
  } catch {
    // As with real timers: the function handles its own errors.
  }
  // Let callbacks the function queued (promise reactions, event handlers) run too.
  await new Promise<void>((resolve) => setImmediate(resolve));
}
