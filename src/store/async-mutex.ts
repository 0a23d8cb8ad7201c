/**
 * A first-come, first-served async lock: the SQLite store's single connection runs one batch of
 * transactions (or one audit snapshot) at a time, while the awaited work may yield to the event
 * loop.
 */

/** Releases a lock taken with {@link AsyncMutex.acquire}; calling it again does nothing. */
export type Release = () => void;

/** Grants the lock to one holder at a time, in the order they asked. */
export class AsyncMutex {
  #tail: Promise<void> = Promise.resolve();

  /** Resolves with a release function once every earlier holder has released the lock. */
  async acquire(): Promise<Release> {
    const previous = this.#tail;
    let unlock!: () => void;
    this.#tail = new Promise<void>((resolve) => {
      unlock = resolve;
    });
    await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      unlock();
    };
  }
}
