/** Where CLI commands write: results to stdout, diagnostics to stderr. Injectable for tests. */

/** The CLI's output sink. */
export interface Output {
  /** One line of human output on stdout. */
  line(text: string): void;
  /** A value as pretty JSON on stdout. */
  json(value: unknown): void;
  /** An aligned text table on stdout. */
  table(headers: readonly string[], rows: readonly (readonly string[])[]): void;
  /** A diagnostic line on stderr. */
  error(text: string): void;
}

/** Formats an aligned text table. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const format = (cells: readonly string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  return [format(headers), ...rows.map(format)].join('\n');
}

/**
 * A reader that went away (`credbroker report | head`) is not an error of ours: the rest of the
 * output is dropped instead of crashing on EPIPE, and a long-running command (`serve`, `agent`)
 * keeps running.
 */
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

/** Output to the process's stdout and stderr. */
export const processOutput: Output = {
  line: (text) => process.stdout.write(`${text}\n`),
  json: (value) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
  table: (headers, rows) => process.stdout.write(`${formatTable(headers, rows)}\n`),
  error: (text) => process.stderr.write(`${text}\n`),
};
