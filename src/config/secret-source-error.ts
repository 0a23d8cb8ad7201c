/**
 * Why a secret could not be read. These are startup errors for operators, so the message names
 * the file or descriptor and the actual reason (mode, owner, OS error), never a vague
 * "login failed" later on (STYLE.md: a swallowed PIN-file error is a known fault of others).
 */
import { BrokerError } from '../core/index.js';

/** Stable codes of {@link SecretSourceError}. */
export type SecretSourceErrorCode =
  /** A secret file is group- or world-accessible. */
  | 'secret.file_mode'
  /** A secret file belongs to another user. */
  | 'secret.file_owner'
  /** A secret file is a directory, FIFO, device, ... */
  | 'secret.not_regular'
  /** The file or descriptor cannot be opened or read (the OS reason is in the message). */
  | 'secret.unreadable'
  /** The secret is empty (after removing one trailing newline). */
  | 'secret.empty'
  /** The secret is larger than {@link MAX_SECRET_BYTES}. */
  | 'secret.too_large'
  /** A prompt was asked for but there is no terminal. */
  | 'secret.no_tty'
  /** The person at the prompt pressed Ctrl-C, or the terminal closed. */
  | 'secret.prompt_cancelled';

/** Largest secret accepted from any source, in bytes (PINs and tokens are far smaller). */
export const MAX_SECRET_BYTES = 4096;

/** A secret source that cannot deliver its secret. Kind `invalid`; never retryable. */
export class SecretSourceError extends BrokerError {
  override readonly name: string = 'SecretSourceError';
  override readonly code: SecretSourceErrorCode;
  /** The safe description of the source: `file:/path`, `fd:3` or `prompt`. */
  readonly source: string;

  /**
   * @param code what went wrong
   * @param source safe description of the source (never the secret)
   * @param message names the file or descriptor and the reason; shown to operators as is
   */
  constructor(code: SecretSourceErrorCode, source: string, message: string, cause?: unknown) {
    super('invalid', {
      code,
      publicMessage: message,
      retryable: false,
      ...(cause === undefined ? {} : { cause }),
    });
    this.code = code;
    this.source = source;
  }
}
