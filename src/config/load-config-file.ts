/** Reading one configuration file from disk (one file per process, STYLE.md). */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from './config-error.js';
import type { DeepReadonly } from './deep-freeze.js';
import { parseConfig } from './parse-config.js';

/**
 * Reads, parses and validates the YAML configuration file at `path` (see {@link parseConfig}).
 * Relative `file` paths of secret sources are resolved against the folder of the config file,
 * so `pin: { file: ./online.pin }` means the PIN file next to it. Messages name the file by its
 * absolute path.
 *
 * @returns the validated configuration, deep-frozen
 * @throws ConfigError if the file cannot be read (naming the file and the OS reason), is not
 *   valid YAML (with line and column), or breaks the schema (every problem, with field paths)
 */
export function loadConfigFile<S extends z.ZodType>(path: string, schema: S): DeepReadonly<z.output<S>> {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw ConfigError.unreadable(file, error);
  }
  return parseConfig(text, schema, file, { baseDir: dirname(file) });
}
