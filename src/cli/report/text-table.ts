/**
 * Aligned text tables for the reports: like output.ts's `formatTable`, but numeric columns
 * (figures with units) are right-aligned so their digits line up, and every line is indented.
 */

/** How a column is aligned. */
export type ColumnAlign = 'left' | 'right';

/**
 * Formats `rows` under `headers`, columns two spaces apart, trailing spaces trimmed.
 * @param align per column; missing columns are left-aligned
 * @param indent prefix of every line (default two spaces)
 */
export function textTable(headers: readonly string[], rows: readonly (readonly string[])[], align: readonly ColumnAlign[] = [], indent = '  '): string[] {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const format = (cells: readonly string[]): string =>
    indent +
    headers
      .map((_, column) => {
        const cell = cells[column] ?? '';
        const width = widths[column] ?? 0;
        return align[column] === 'right' ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [format(headers), ...rows.map(format)];
}
