/**
 * Writing a quorum share to its officer's own file. Reading it back is `readSecret({ file })`
 * from src/config (which checks the 0600 mode and the owner) followed by
 * `secret.reveal((text) => parseShare(text, secret.source))`; the trailing newline written here
 * is ignored by both.
 */
import { writeNewFile } from './exclusive-file.js';
import { parseShare } from './share-code.js';

/** Mode of a share file: read and write for its owner only. */
export const SHARE_FILE_MODE = 0o600;

/**
 * Writes `shareText` and a newline to a new file at `path`, mode 0600, fsync'd with its directory
 * entry. Never overwrites: an existing file (or symlink) at `path` is refused. If writing fails
 * the partial file is removed.
 * @throws BrokerError `ceremony.share_invalid` if `shareText` is not a well-formed share (nothing
 *   is created); `ceremony.output_exists` (kind conflict) naming the file; `ceremony.output_failed`
 *   naming the file and the OS reason
 */
export async function writeShareFile(path: string, shareText: string): Promise<void> {
  // Refuse to store anything an officer could not use later.
  parseShare(shareText, `the caller (for ${path})`).dispose();
  await writeNewFile(path, `${shareText.trim()}\n`, SHARE_FILE_MODE, 'share file');
}
