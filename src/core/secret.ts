/**
 * A secret value (HSM PIN, join token, database password) that never prints itself.
 *
 * `toString`, `toJSON`, `util.inspect` and template literals all give `[redacted]`, so a Secret
 * that slips into a log line, an error message or a JSON reply leaks nothing. The value is kept
 * in a Buffer that {@link Secret.dispose} overwrites with zeros.
 */
import { inspect } from 'node:util';
import { timingSafeEqual } from 'node:crypto';

const REDACTED = '[redacted]';

/** A secret that prints `[redacted]` everywhere. */
export class Secret {
  #value: Buffer | null;
  /** Where the secret came from (a file path, `fd:3`, `prompt`): safe to log. */
  readonly source: string;

  private constructor(value: Buffer, source: string) {
    this.#value = value;
    this.source = source;
  }

  /** Wraps a copy of `value` (UTF-8 for strings); the caller should drop its own copy. */
  static from(value: string | Uint8Array, source = 'memory'): Secret {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    return new Secret(bytes, source);
  }

  /** Length of the secret in bytes. */
  get byteLength(): number {
    return this.#live().length;
  }

  /**
   * Gives the value to `use` as a string and returns what it returns. Keep the string local to
   * `use`: never store or log it.
   * @throws Error if the secret was disposed
   */
  reveal<T>(use: (value: string) => T): T {
    return use(this.#live().toString('utf8'));
  }

  /** Gives the value to `use` as bytes (a view that is zeroed on dispose). */
  revealBytes<T>(use: (value: Uint8Array) => T): T {
    return use(this.#live());
  }

  /** Constant-time comparison with another secret. */
  equals(other: Secret): boolean {
    const a = this.#live();
    const b = other.#live();
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** Overwrites the value with zeros; later use throws. */
  dispose(): void {
    this.#value?.fill(0);
    this.#value = null;
  }

  /** True once disposed. */
  get disposed(): boolean {
    return this.#value === null;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED}, source=${this.source})`;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  #live(): Buffer {
    if (this.#value === null) throw new Error(`secret from ${this.source} was already disposed`);
    return this.#value;
  }
}
