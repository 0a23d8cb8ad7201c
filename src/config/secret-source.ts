/**
 * Where a secret (HSM PIN, join token, database password) comes from. A config file names the
 * source, never the secret (DESIGN.md invariant 3, STYLE.md "Configuration and secrets"):
 *
 * ```yaml
 * pin: { file: ./online.pin }   # a file with mode 0600 owned by the broker's user;
 *                               # relative paths are resolved against the config file's folder
 * pin: { fd: 3 }                # an inherited file descriptor (a pipe from a secrets manager)
 * pin: { prompt: "HSM user PIN: " }  # asked on the terminal without echo
 * ```
 *
 * A plain value (`pin: "1234"`) or keys such as `value`, `env` or `literal` are refused with a
 * message that says why and what to write instead.
 */
import { resolve } from 'node:path';
import { z } from 'zod';

/** A secret kept in a file (mode 0600 or stricter, owned by the process's user). */
export interface FileSecretSource {
  /** Path of the file; absolute once loaded by `loadConfigFile`/`parseConfig`. */
  readonly file: string;
}

/** A secret read from an inherited file descriptor (3 or higher), which is then closed. */
export interface FdSecretSource {
  /** The descriptor number, >= 3 (0, 1 and 2 are stdin, stdout and stderr). */
  readonly fd: number;
}

/** A secret typed by a person at an echo-free terminal prompt. */
export interface PromptSecretSource {
  /** The text shown before reading, e.g. `HSM user PIN: `. */
  readonly prompt: string;
}

/** Exactly one place a secret comes from. */
export type SecretSource = FileSecretSource | FdSecretSource | PromptSecretSource;

/** The keys of a secret source; exactly one must be given. */
export const SECRET_SOURCE_KEYS = Object.freeze(['file', 'fd', 'prompt'] as const);

/**
 * Keys people reach for to put a secret, or a pointer to the environment, into the config
 * itself. They get the explanation instead of a bare "unknown key".
 */
const INLINE_SECRET_KEYS: ReadonlySet<string> = new Set([
  'value',
  'env',
  'environment',
  'literal',
  'plain',
  'text',
  'string',
  'inline',
  'secret',
  'pin',
  'password',
  'data',
  'base64',
  'hex',
]);

/**
 * File sources made by a {@link secretSource} schema. The loader resolves their relative paths
 * against the config file's folder after parsing (zod has no parse context to carry it), and
 * this set is how it recognises them in the parsed tree without guessing from shapes.
 */
const FILE_SOURCES = new WeakSet<object>();

/**
 * A schema for a secret source; `description` names the secret in messages
 * (`the HSM user PIN is a secret: ...`). Use it for every secret a config holds
 * (`hsm.pin`, `hsm.soPin`, `store.password`, ...), so all of them accept and refuse the same
 * forms. Output: a frozen-ready {@link SecretSource} object.
 *
 * Refused, with a message that says a secret is never written in a config file or an environment
 * variable and names the three accepted forms: a plain value (string, number, boolean), and an
 * object with a key such as `value`, `env` or `literal`. Also refused: no key or several of
 * `file`, `fd`, `prompt`, an empty path or prompt, an fd below 3, any other key.
 */
export function secretSource(description: string) {
  const explanation =
    `the ${description} is a secret, and a secret is never written in a config file or an ` +
    'environment variable; use { file: <path> } (a file with mode 0600 owned by this user), ' +
    '{ fd: <n> } (an inherited file descriptor >= 3) or { prompt: <text> } (asked on the ' +
    'terminal without echo)';
  const forms = `expected one of { file: <path> }, { fd: <n> }, { prompt: <text> } for the ${description}`;

  const fields = z.strictObject({
    file: z
      .string({ error: `expected the path of the file that holds the ${description} (a string)` })
      .min(1, { error: 'expected a non-empty path' })
      .optional(),
    fd: z
      .int({ error: 'expected a file descriptor number (an integer >= 3)' })
      .min(3, {
        error: (issue) =>
          `expected a file descriptor >= 3 (0, 1 and 2 are stdin, stdout and stderr), got ${String(issue.input)}`,
      })
      .optional(),
    prompt: z
      .string({ error: 'expected the prompt text (a string)' })
      .min(1, { error: 'expected a non-empty prompt text' })
      .optional(),
  });

  return z
    .custom<unknown>((value) => value !== undefined, { error: `missing: ${forms}` })
    .check((ctx) => {
      const value = ctx.value;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        // Never echo the value: it may be the secret itself.
        const isPlain = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
        ctx.issues.push({ code: 'custom', message: isPlain ? explanation : forms, input: value, continue: false });
        return;
      }
      const inlineKeys = Object.keys(value).filter((k) => INLINE_SECRET_KEYS.has(k.toLowerCase()));
      for (const key of inlineKeys) {
        ctx.issues.push({ code: 'custom', message: explanation, input: value, path: [key], continue: false });
      }
    })
    .pipe(fields)
    .check((ctx) => {
      const given = SECRET_SOURCE_KEYS.filter((k) => ctx.value[k] !== undefined);
      if (given.length !== 1) {
        const found = given.length === 0 ? 'got none' : `got ${given.join(' and ')}`;
        ctx.issues.push({
          code: 'custom',
          message: `expected exactly one of file, fd, prompt, ${found}`,
          input: ctx.value,
          continue: false,
        });
      }
    })
    .transform((fields): SecretSource => {
      if (fields.file !== undefined) {
        const source = { file: fields.file };
        FILE_SOURCES.add(source);
        return source;
      }
      if (fields.fd !== undefined) return { fd: fields.fd };
      return { prompt: fields.prompt ?? '' };
    })
    .describe(`${description}: { file: <path> } | { fd: <n> } | { prompt: <text> }`);
}

/** The schema of a secret source with the generic description "secret". */
export const secretSourceSchema = secretSource('secret');

/** A safe, loggable description of a source: `file:/etc/credbroker/online.pin`, `fd:3`, `prompt`. */
export function describeSecretSource(source: SecretSource): string {
  if ('file' in source) return `file:${resolve(source.file)}`;
  if ('fd' in source) return `fd:${String(source.fd)}`;
  return 'prompt';
}

/**
 * Makes the `file` of every secret source in a freshly parsed (not yet frozen) tree absolute,
 * resolving relative paths against `baseDir` (the config file's folder). Absolute paths are kept.
 * Only objects made by a {@link secretSource} schema are touched.
 */
export function resolveSecretSourcePaths(tree: unknown, baseDir: string): void {
  const seen = new WeakSet<object>();
  const visit = (node: unknown): void => {
    if (typeof node !== 'object' || node === null || seen.has(node)) return;
    seen.add(node);
    if (FILE_SOURCES.has(node)) {
      const source = node as { file: string };
      source.file = resolve(baseDir, source.file);
      return;
    }
    for (const child of Object.values(node)) visit(child);
  };
  visit(tree);
}
