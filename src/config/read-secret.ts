/**
 * Reading a secret from its {@link SecretSource}: a checked file, an inherited descriptor or an
 * echo-free prompt. The bytes go straight into a {@link Secret}; buffers used on the way are
 * zeroed.
 */
import { close, constants, fstat, read, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Socket } from 'node:net';
import { resolve } from 'node:path';
import { isatty } from 'node:tty';
import { promisify } from 'node:util';
import { isBrokerError, Secret, type BrokerError } from '../core/index.js';
import { describeOsError } from './os-error.js';
import type { PromptIo } from './prompt-io.js';
import { MAX_SECRET_BYTES, SecretSourceError } from './secret-source-error.js';
import { describeSecretSource, type SecretSource } from './secret-source.js';
import { TerminalPromptIo } from './terminal-prompt-io.js';

const fstatAsync = promisify(fstat);
const closeAsync = promisify(close);

/** Options of {@link readSecret}. */
export interface ReadSecretOptions {
  /** Names the secret in messages, e.g. `HSM user PIN`. Default: `secret`. */
  readonly label?: string;
  /** The terminal for `prompt` sources. Default: a {@link TerminalPromptIo} on stdin/stderr. */
  readonly prompt?: PromptIo;
}

/**
 * Reads the secret that `source` points to.
 *
 * - `file`: opened first, then checked on the open descriptor (no race between check and read):
 *   a regular file (symlinks to one are fine), owned by the process's user, no group or other
 *   permission bits (0600 or 0400). Relative paths resolve against the working directory
 *   (`loadConfigFile` has already made them absolute).
 * - `fd`: read to the end (a pipe, socket or file) and closed. A terminal is refused.
 * - `prompt`: the prompt text is shown and a line read without echo; needs a TTY.
 *
 * Exactly one trailing `\n` or `\r\n` is removed from file and fd secrets. `Secret.source` is
 * `file:<absolute path>`, `fd:<n>` or `prompt`.
 *
 * @throws SecretSourceError (kind `invalid`) naming the file or descriptor and the reason:
 *   `secret.not_regular`, `secret.file_owner`, `secret.file_mode` (with the actual mode in
 *   octal), `secret.unreadable` (with the OS reason), `secret.empty`, `secret.too_large`
 *   (over {@link MAX_SECRET_BYTES}), `secret.no_tty`, `secret.prompt_cancelled`
 */
export async function readSecret(source: SecretSource, options: ReadSecretOptions = {}): Promise<Secret> {
  const label = options.label ?? 'secret';
  if ('file' in source) return readFileSecret(resolve(source.file), label);
  if ('fd' in source) return readFdSecret(source.fd, label);
  return readPromptSecret(source.prompt, label, options.prompt ?? new TerminalPromptIo());
}

async function readFileSecret(path: string, label: string): Promise<Secret> {
  const source = describeSecretSource({ file: path });
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file.
    handle = await open(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch (error) {
    throw new SecretSourceError(
      'secret.unreadable',
      source,
      `cannot read ${label} file ${path}: ${describeOsError(error)}`,
      error,
    );
  }
  try {
    const stats = await handle.stat();
    checkFileStats(stats, path, label, source);
    if (stats.size > MAX_SECRET_BYTES) throw tooLarge(label, source, `file ${path}`);
    const raw = await readAtMost(
      (buffer, offset, length) => handle.read(buffer, offset, length, null).then((r) => r.bytesRead),
      MAX_SECRET_BYTES + 1,
    ).catch((error: unknown) => {
      throw new SecretSourceError(
        'secret.unreadable',
        source,
        `cannot read ${label} file ${path}: ${describeOsError(error)}`,
        error,
      );
    });
    return toSecret(raw, label, source, `file ${path}`);
  } finally {
    await handle.close();
  }
}

function checkFileStats(stats: Stats, path: string, label: string, source: string): void {
  if (!stats.isFile()) {
    throw new SecretSourceError(
      'secret.not_regular',
      source,
      `${label} file ${path} is ${describeFileType(stats)}, not a regular file`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid) {
    throw new SecretSourceError(
      'secret.file_owner',
      source,
      `${label} file ${path} is owned by uid ${stats.uid}, not by uid ${uid} that runs this process; ` +
        `it must belong to this user (chown ${uid} ${shellQuote(path)})`,
    );
  }
  if ((stats.mode & 0o077) !== 0) {
    throw new SecretSourceError(
      'secret.file_mode',
      source,
      `${label} file ${path} has mode ${formatMode(stats.mode)}; it must be 0600 or stricter ` +
        `(chmod 600 ${shellQuote(path)})`,
    );
  }
}

async function readFdSecret(fd: number, label: string): Promise<Secret> {
  const source = describeSecretSource({ fd });
  const where = `file descriptor ${fd}`;
  if (!Number.isSafeInteger(fd) || fd < 3) {
    throw new SecretSourceError(
      'secret.unreadable',
      source,
      `cannot read ${label} from ${where}: use a descriptor >= 3 (0, 1 and 2 are stdin, stdout and stderr)`,
    );
  }
  let stats: Stats;
  try {
    stats = await fstatAsync(fd);
  } catch (error) {
    throw new SecretSourceError(
      'secret.unreadable',
      source,
      `cannot read ${label} from ${where}: ${describeOsError(error)}; is it passed to this process?`,
      error,
    );
  }
  const unreadable = (error: unknown): BrokerError =>
    isBrokerError(error)
      ? error
      : new SecretSourceError(
          'secret.unreadable',
          source,
          `cannot read ${label} from ${where}: ${describeOsError(error)}`,
          error,
        );

  if (stats.isFIFO() || stats.isSocket()) {
    // Pipes and sockets are read through the event loop: a blocking read on a thread-pool thread
    // would pin that thread for as long as the writer keeps the pipe open.
    const raw = await readStream(fd, label, source, where).catch((error: unknown) => {
      throw unreadable(error);
    });
    return toSecret(raw, label, source, where);
  }
  try {
    if (isatty(fd)) {
      throw new SecretSourceError(
        'secret.unreadable',
        source,
        `${where} is a terminal; use { prompt: <text> } to type the ${label} interactively`,
      );
    }
    if (stats.isFile() && stats.size > MAX_SECRET_BYTES) throw tooLarge(label, source, where);
    const readAsync = promisify(read);
    const raw = await readAtMost(
      (buffer, offset, length) => readAsync(fd, buffer, offset, length, null).then((r) => r.bytesRead),
      MAX_SECRET_BYTES + 1,
    );
    return toSecret(raw, label, source, where);
  } catch (error) {
    throw unreadable(error);
  } finally {
    await closeAsync(fd).catch(() => undefined);
  }
}

function readStream(fd: number, label: string, source: string, where: string): Promise<Buffer> {
  return new Promise<Buffer>((resolvePromise, reject) => {
    const socket = new Socket({ fd, readable: true, writable: false, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      zero(chunks);
      socket.destroy();
      reject(error);
    };
    socket.on('data', (chunk: Buffer) => {
      total += chunk.length;
      chunks.push(chunk);
      if (total > MAX_SECRET_BYTES) fail(tooLarge(label, source, where));
    });
    socket.on('error', fail);
    socket.on('end', () => {
      if (settled) return;
      settled = true;
      const all = Buffer.concat(chunks, total);
      zero(chunks);
      socket.destroy();
      resolvePromise(all);
    });
  });
}

async function readPromptSecret(prompt: string, label: string, io: PromptIo): Promise<Secret> {
  const source = describeSecretSource({ prompt });
  if (!io.isTty) {
    throw new SecretSourceError(
      'secret.no_tty',
      source,
      `cannot prompt for the ${label}: there is no terminal (stdin is not a TTY); ` +
        'give it as { file: <path to a 0600 file> } or { fd: <n> } instead',
    );
  }
  io.write(/\s$/.test(prompt) ? prompt : `${prompt} `);
  let line: string;
  try {
    line = await io.readHidden();
  } catch (error) {
    if (isBrokerError(error)) throw error;
    throw new SecretSourceError(
      'secret.prompt_cancelled',
      source,
      `prompt for the ${label} failed: ${describeOsError(error)}`,
      error,
    );
  }
  if (line.length === 0) throw empty(label, source, 'the prompt');
  return Secret.from(line, source);
}

/** Reads until end of input or until `limit` bytes, whichever comes first. */
async function readAtMost(
  readInto: (buffer: Buffer, offset: number, length: number) => Promise<number>,
  limit: number,
): Promise<Buffer> {
  const buffer = Buffer.alloc(limit);
  let filled = 0;
  try {
    while (filled < limit) {
      const count = await readInto(buffer, filled, limit - filled);
      if (count === 0) break;
      filled += count;
    }
  } catch (error) {
    buffer.fill(0);
    throw error;
  }
  return buffer.subarray(0, filled);
}

/** Builds the Secret from raw bytes (one trailing newline removed) and zeroes the bytes. */
function toSecret(raw: Buffer, label: string, source: string, where: string): Secret {
  try {
    if (raw.length > MAX_SECRET_BYTES) throw tooLarge(label, source, where);
    const value = withoutOneNewline(raw);
    if (value.length === 0) throw empty(label, source, where);
    return Secret.from(value, source);
  } finally {
    raw.fill(0);
  }
}

function withoutOneNewline(bytes: Buffer): Buffer {
  const length = bytes.length;
  if (length >= 2 && bytes[length - 2] === 0x0d && bytes[length - 1] === 0x0a) return bytes.subarray(0, length - 2);
  if (length >= 1 && bytes[length - 1] === 0x0a) return bytes.subarray(0, length - 1);
  return bytes;
}

function empty(label: string, source: string, where: string): SecretSourceError {
  return new SecretSourceError('secret.empty', source, `the ${label} from ${where} is empty`);
}

function tooLarge(label: string, source: string, where: string): SecretSourceError {
  return new SecretSourceError(
    'secret.too_large',
    source,
    `the ${label} from ${where} is larger than ${MAX_SECRET_BYTES} bytes; is it the right file?`,
  );
}

function zero(chunks: Buffer[]): void {
  for (const chunk of chunks) chunk.fill(0);
}

/** `0644`, `0600`, `1777`: permission bits (and setuid/setgid/sticky) as four octal digits. */
function formatMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

function describeFileType(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'of an unknown type';
}

function shellQuote(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}
