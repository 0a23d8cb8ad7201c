/** Reading the policy file from disk. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../config/index.js';
import { Policy } from './policy.js';

/**
 * Reads and validates the policy file at `path` (see {@link Policy.parse}). The policy's
 * `source` is the absolute path, and its `sha256` is the hash of the file's bytes.
 * @throws ConfigError naming the file: unreadable (with the OS reason), not UTF-8, not valid
 *   YAML (line and column), or every policy problem with its field path
 */
export function loadPolicyFile(path: string): Policy {
  const file = resolve(path);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw ConfigError.unreadable(file, error);
  }
  let text: string;
  try {
    // ignoreBOM keeps a byte order mark in the text, so sha256 of the text's UTF-8 is the file's.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (error) {
    throw new ConfigError(file, [{ path: '', message: 'the file is not valid UTF-8' }], { cause: error });
  }
  return Policy.parse(text, file);
}
