/**
 * A first-come, first-served async lock: the SQLite store runs one transaction at a time on its
 * single connection, while the awaited work of a transaction may yield to the event loop.
 */

/** Releases a lock taken with {@link AsyncMutex.acquire}; calling it again does nothing. */
export type Release = () => void;

/** Grants the lock to one holder at a time, in the order they asked. */
export class AsyncMutex {
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;

  /** Holders waiting or holding the lock. */
  get pending(): number {
    return this.#pending;
  }

  /** Resolves with a release function once every earlier holder has released the lock. */
  async acquire(): Promise<Release> {
    const previous = this.#tail;
    let unlock!: () => void;
    this.#tail = new Promise<void>((resolve) => {
      unlock = resolve;
    });
    this.#pending++;
    await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#pending--;
      unlock();
    };
  }

  /** Runs `section` under the lock and returns what it returns; a throw releases the lock too. */
  async run<T>(section: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await section();
    } finally {
      release();
    }
  }
}
