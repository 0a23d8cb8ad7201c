/**
 * Where the agent finds a join token when it needs one (no certificate yet, or the current one
 * is expired or revoked). A join token is single-use: it is read only when needed, disposed
 * after the attempt, and a token file is deleted once the broker has accepted it.
 */
import { unlinkSync } from 'node:fs';
import { BrokerError, Secret } from '../core/index.js';
import { describeSecretSource, readSecret, type SecretSource } from '../config/index.js';

/** A place a join token may be found. */
export interface JoinTokenSource {
  /** Safe to log: `file:/etc/credbroker/join-token`, `fd:3`, `memory`. */
  readonly description: string;
  /**
   * The token, or null when there is none now (no file, descriptor already used). The caller
   * disposes the Secret.
   * @throws SecretSourceError when the token exists but cannot be used (e.g. file mode 0644),
   *   naming the file and the reason
   */
  take(): Promise<Secret | null>;
  /** The broker accepted the token last taken: forget it (delete its file). */
  spent(): void;
}

/**
 * A join token file, read afresh each time a token is needed (an operator may drop in a new one
 * after a revocation) and deleted after a successful enrollment. Mode 0600 is checked on every
 * read (see readSecret).
 */
export function fileJoinToken(path: string): JoinTokenSource {
  return {
    description: describeSecretSource({ file: path }),
    take: async () => {
      try {
        return await readSecret({ file: path }, { label: 'join token' });
      } catch (error) {
        if (isMissingFile(error)) return null;
        throw error;
      }
    },
    spent: () => {
      try {
        unlinkSync(path);
      } catch (error) {
        // Already gone is fine; anything else leaves a spent (useless) token behind: say so.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new BrokerError('internal', { code: 'agent.join_token_unlink', publicMessage: `the join token in ${path} was used but the file cannot be deleted: ${(error as Error).message}`, cause: error });
        }
      }
    },
  };
}

/** A join token from an inherited descriptor: read at most once (a descriptor cannot be re-read). */
export function fdJoinToken(fd: number): JoinTokenSource {
  let used = false;
  return {
    description: describeSecretSource({ fd }),
    take: async () => {
      if (used) return null;
      used = true;
      return readSecret({ fd }, { label: 'join token' });
    },
    spent: () => undefined,
  };
}

/** A join token the caller already holds (the library); given out once. */
export function secretJoinToken(secret: Secret): JoinTokenSource {
  let token: Secret | null = secret;
  return {
    description: secret.source,
    take: () => {
      const taken = token;
      // Hand out a copy: the caller disposes what it takes, and a refused attempt must not lose the token.
      return Promise.resolve(taken === null || taken.disposed ? null : taken.revealBytes((bytes) => Secret.from(bytes, taken.source)));
    },
    spent: () => {
      token?.dispose();
      token = null;
    },
  };
}

/** The join token source a config names: a file or a descriptor (never a prompt: the agent is unattended). */
export function joinTokenSourceOf(source: SecretSource): JoinTokenSource {
  if ('file' in source) return fileJoinToken(source.file);
  if ('fd' in source) return fdJoinToken(source.fd);
  throw new BrokerError('invalid', { code: 'agent.join_token_prompt', publicMessage: 'the agent runs unattended: give the join token as { file: <path> } (mode 0600) or { fd: <n> }, not as a prompt' });
}

function isMissingFile(error: unknown): boolean {
  const cause = (error as { cause?: unknown }).cause;
  return isBrokerErrorCode(error, 'secret.unreadable') && (cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function isBrokerErrorCode(error: unknown, code: string): boolean {
  return error instanceof BrokerError && error.code === code;
}
