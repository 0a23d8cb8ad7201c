/**
 * Files a ceremony creates (share files, transcripts): created exclusively (never overwriting
 * anything, not even through a symlink), given an exact mode whatever the umask, and fsync'd
 * together with their directory entry, so what a ceremony wrote survives a crash right after.
 */
import { constants } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BrokerError } from '../core/index.js';

/**
 * Creates `path` with O_CREAT | O_EXCL (an existing file or symlink is refused) and sets its
 * mode to exactly `mode`. The caller writes, syncs and closes the handle.
 * @param what names the file in messages, e.g. `share file`, `transcript`
 * @throws BrokerError `ceremony.output_exists` (kind conflict) naming the file if it exists;
 *   `ceremony.output_failed` (kind invalid) naming the file and the OS reason otherwise
 */
export async function createExclusiveFile(path: string, mode: number, what: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new BrokerError('conflict', {
        code: 'ceremony.output_exists',
        publicMessage: `the ${what} ${path} already exists; it is never overwritten: move it away or choose another path`,
        cause: error,
      });
    }
    throw fileError(`cannot create the ${what} ${path}`, error);
  }
  try {
    // The umask may have removed bits from `mode` (or an odd one left more): set it exactly.
    await handle.chmod(mode);
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw fileError(`cannot set the mode of the ${what} ${path}`, error);
  }
  return handle;
}

/**
 * Creates `path` exclusively with `data` and exactly `mode`, fsync'd with its directory entry;
 * a partial file is removed if writing fails. The folder must exist (a ceremony never guesses
 * where secrets go).
 * @param what names the file in messages, e.g. `root certificate`
 * @throws BrokerError `ceremony.output_exists` (conflict) or `ceremony.output_failed`, naming the file
 */
export async function writeNewFile(path: string, data: string | Uint8Array, mode: number, what: string): Promise<void> {
  const handle = await createExclusiveFile(path, mode, what);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  try {
    await writeFully(handle, bytes, 0);
    await handle.sync();
    await handle.close();
    await syncDirectoryOf(path);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw fileError(`cannot write the ${what} ${path}`, error);
  } finally {
    if (typeof data === 'string') bytes.fill(0);
  }
}

/** Writes all of `bytes` at `position` (handle.write may write less than asked). */
export async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
    written += bytesWritten;
  }
}

/** fsyncs the directory holding `path`, so a newly created entry survives a crash. */
export async function syncDirectoryOf(path: string): Promise<void> {
  const directory = await open(dirname(path), constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/**
 * A BrokerError `ceremony.output_failed` (kind invalid) for an OS failure:
 * `<message>: <reason> (<CODE>)`.
 */
export function fileError(message: string, error: unknown): BrokerError {
  return new BrokerError('invalid', {
    code: 'ceremony.output_failed',
    publicMessage: `${message}: ${describeOsError(error)}`,
    cause: error,
  });
}

/** `permission denied (EACCES)` rather than Node's `EACCES: permission denied, open '/x'`. */
function describeOsError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  if (code === undefined) return error.message;
  const reason = new RegExp(`^${code}: ([^,]+)`).exec(error.message)?.[1];
  return reason === undefined ? `${error.message} (${code})` : `${reason} (${code})`;
}
