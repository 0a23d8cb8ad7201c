/** Parsed configuration is frozen all the way down (STYLE.md): nothing changes it after startup. */

/** `T` with every property, array and nested object read-only. */
export type DeepReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends readonly (infer E)[]
    ? readonly DeepReadonly<E>[]
    : T extends object
      ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;

/**
 * Freezes `value` and every object and array reachable through its own properties, then returns
 * it. Typed arrays and Buffers are left as they are (they cannot be frozen). Cycles are fine.
 */
export function deepFreeze<T>(value: T): DeepReadonly<T> {
  freeze(value, new WeakSet());
  return value as DeepReadonly<T>;
}

function freeze(value: unknown, seen: WeakSet<object>): void {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return;
  if (seen.has(value)) return;
  seen.add(value);
  for (const key of Reflect.ownKeys(value)) {
    const descriptor = Object.getOwnPropertyDescriptor(value, key);
    if (descriptor !== undefined && 'value' in descriptor) freeze(descriptor.value, seen);
  }
  Object.freeze(value);
}
