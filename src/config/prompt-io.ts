/** The terminal as seen by an echo-free secret prompt; injectable so tests need no TTY. */

/** Terminal input and output for asking a person for a secret. */
export interface PromptIo {
  /** True when a person can answer: the input is an interactive terminal. */
  readonly isTty: boolean;
  /** Shows `text` to the person (the prompt; never the secret). */
  write(text: string): void;
  /**
   * Reads one line without echoing it and resolves with it (without the line ending).
   * Rejects if the person cancels (Ctrl-C) or the terminal closes.
   */
  readHidden(): Promise<string>;
}
