/**
 * The real {@link PromptIo}: reads from a TTY in raw mode, so the terminal does not echo what is
 * typed, and writes the prompt to stderr (stdout may be a pipe carrying data).
 */
import { StringDecoder } from 'node:string_decoder';
import type { PromptIo } from './prompt-io.js';
import { SecretSourceError } from './secret-source-error.js';

/** The part of a TTY read stream (like `process.stdin`) that a hidden prompt uses. */
export interface TerminalInput {
  readonly isTTY?: boolean | undefined;
  readonly isRaw?: boolean | undefined;
  setRawMode?(mode: boolean): unknown;
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  removeListener(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  removeListener(event: 'end', listener: () => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

/** Where the prompt text goes (like `process.stderr`). */
export interface TerminalOutput {
  write(text: string): unknown;
}

/** Options of {@link TerminalPromptIo}. */
export interface TerminalPromptIoOptions {
  /** Default: `process.stdin`. */
  readonly input?: TerminalInput;
  /** Default: `process.stderr`. */
  readonly output?: TerminalOutput;
}

const ENTER = new Set(['\r', '\n', '\u0004']); // Enter, or Ctrl-D (end of input)
const CTRL_C = '\u0003';
const CTRL_U = '\u0015'; // clear the line, as a cooked-mode terminal would
const BACKSPACE = new Set(['\u007f', '\b']);
const ESC = '\u001b';

/**
 * A prompt on the controlling terminal without echo. Raw mode is switched on only while reading
 * and restored afterwards. Keys: Enter (or Ctrl-D) ends the line, Backspace deletes one
 * character, Ctrl-U clears the line, Ctrl-C cancels; other control characters and escape
 * sequences (arrow keys) are ignored.
 */
export class TerminalPromptIo implements PromptIo {
  readonly #input: TerminalInput;
  readonly #output: TerminalOutput;

  constructor(options: TerminalPromptIoOptions = {}) {
    this.#input = options.input ?? process.stdin;
    this.#output = options.output ?? process.stderr;
  }

  get isTty(): boolean {
    return this.#input.isTTY === true && typeof this.#input.setRawMode === 'function';
  }

  write(text: string): void {
    this.#output.write(text);
  }

  /**
   * @throws SecretSourceError `secret.prompt_cancelled` on Ctrl-C or when the input ends
   */
  readHidden(): Promise<string> {
    const input = this.#input;
    const output = this.#output;
    return new Promise<string>((resolve, reject) => {
      const decoder = new StringDecoder('utf8');
      const wasRaw = input.isRaw === true;
      let typed: string[] = [];
      let inEscape = false;

      const finish = (settle: () => void): void => {
        input.removeListener('data', onData);
        input.removeListener('end', onEnd);
        input.setRawMode?.(wasRaw);
        input.pause();
        // The Enter key was not echoed either; move to the next line ourselves.
        output.write('\n');
        settle();
      };
      const cancel = (why: string): void => {
        typed = [];
        finish(() => {
          reject(new SecretSourceError('secret.prompt_cancelled', 'prompt', `secret prompt ${why}`));
        });
      };
      const onData = (chunk: Buffer | string): void => {
        const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
        for (const ch of text) {
          if (inEscape) {
            // A CSI sequence such as ESC [ A ends with a letter or '~'.
            if (/[A-Za-z~]/.test(ch)) inEscape = false;
          } else if (ENTER.has(ch)) {
            const line = typed.join('');
            typed = [];
            finish(() => {
              resolve(line);
            });
            return;
          } else if (ch === CTRL_C) {
            cancel('cancelled (Ctrl-C)');
            return;
          } else if (BACKSPACE.has(ch)) {
            typed.pop();
          } else if (ch === CTRL_U) {
            typed = [];
          } else if (ch === ESC) {
            inEscape = true;
          } else if (ch >= ' ') {
            typed.push(ch);
          }
        }
      };
      const onEnd = (): void => {
        cancel('input closed before Enter');
      };

      input.setRawMode?.(true);
      input.on('data', onData);
      input.on('end', onEnd);
      input.resume();
    });
  }
}
