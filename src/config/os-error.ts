/**
 * Operating-system errors (ENOENT, EACCES, ...) as short reasons for messages that people read:
 * `no such file or directory (ENOENT)` rather than Node's `ENOENT: no such file or directory,
 * open '/x'` (the file is already named by the caller's message).
 */

/**
 * Describes why an OS call failed, e.g. `permission denied (EACCES)`.
 * Falls back to the error's message for errors without a code.
 */
export function describeOsError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  if (code === undefined) return error.message;
  // Node's text is "CODE: reason, syscall 'path'"; keep the reason only.
  const reason = new RegExp(`^${code}: ([^,]+)`).exec(error.message)?.[1];
  return reason === undefined ? `${error.message} (${code})` : `${reason} (${code})`;
}
