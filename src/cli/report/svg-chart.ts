/**
 * Small inline SVG charts for the HTML report, drawn here so the page needs nothing from
 * anywhere else: vertical bars (histograms), horizontal bar groups (percentiles, MTTR) and
 * stacked share bars. Colours come from CSS classes the page defines (`.s0` … `.s3`); every text
 * taken from data is escaped.
 */

/** Escapes text for HTML and SVG content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char] ?? char);
}

/** One bar. */
export interface Bar {
  readonly label: string;
  readonly value: number;
  /** Printed above (or beside) the bar; default the value. */
  readonly valueLabel?: string;
}

/** A labelled group of bars sharing one scale, e.g. an action's p50/p95/p99/max. */
export interface BarGroup {
  readonly label: string;
  readonly bars: readonly Bar[];
}

/** One segment of a stacked bar. */
export interface Segment {
  readonly label: string;
  readonly value: number;
}

const FONT = 12;
const round = (value: number): string => String(Math.round(value * 10) / 10);

function svgOpen(width: number, height: number, title: string): string {
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(title)}"><title>${escapeXml(title)}</title>`;
}

/**
 * Vertical bars on one linear scale from 0, labels below, values above (a histogram when the
 * labels are bucket edges).
 */
export function verticalBars(title: string, bars: readonly Bar[], options: { readonly width?: number; readonly height?: number } = {}): string {
  const width = options.width ?? 480;
  const height = options.height ?? 200;
  const top = 22;
  const bottom = 34;
  const plot = height - top - bottom;
  const slot = (width - 20) / Math.max(1, bars.length);
  const barWidth = Math.max(4, slot * 0.7);
  const max = Math.max(0, ...bars.map((bar) => bar.value));
  const parts = [svgOpen(width, height, title), `<line class="axis" x1="10" y1="${top + plot}" x2="${width - 10}" y2="${top + plot}"/>`];
  bars.forEach((bar, index) => {
    const h = max === 0 ? 0 : (bar.value / max) * plot;
    const x = 10 + index * slot + (slot - barWidth) / 2;
    const cx = x + barWidth / 2;
    parts.push(`<rect class="s0" x="${round(x)}" y="${round(top + plot - h)}" width="${round(barWidth)}" height="${round(h)}"><title>${escapeXml(`${bar.label}: ${bar.valueLabel ?? String(bar.value)}`)}</title></rect>`);
    parts.push(`<text x="${round(cx)}" y="${round(top + plot - h - 5)}" text-anchor="middle" font-size="${FONT}">${escapeXml(bar.valueLabel ?? String(bar.value))}</text>`);
    parts.push(`<text x="${round(cx)}" y="${top + plot + 16}" text-anchor="middle" font-size="${FONT - 1}" class="muted">${escapeXml(bar.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/**
 * Groups of horizontal bars on one linear scale from 0: one row per bar, the group's label
 * before its first row. Bar `i` of every group has colour class `s<i>`.
 */
export function horizontalBarGroups(title: string, groups: readonly BarGroup[], options: { readonly width?: number; readonly labelWidth?: number } = {}): string {
  const width = options.width ?? 640;
  const labelWidth = options.labelWidth ?? 150;
  const row = 16;
  const gap = 10;
  const valueWidth = 80;
  const plot = width - labelWidth - valueWidth - 20;
  const max = Math.max(0, ...groups.flatMap((group) => group.bars.map((bar) => bar.value)));
  const height = 10 + groups.reduce((total, group) => total + group.bars.length * row + gap, 0);
  const parts = [svgOpen(width, height, title)];
  let y = 8;
  for (const group of groups) {
    parts.push(`<text x="${labelWidth - 8}" y="${y + row - 4}" text-anchor="end" font-size="${FONT}">${escapeXml(group.label)}</text>`);
    group.bars.forEach((bar, index) => {
      const w = max === 0 ? 0 : (bar.value / max) * plot;
      const label = `${bar.label} ${bar.valueLabel ?? String(bar.value)}`;
      parts.push(`<rect class="s${index % 4}" x="${labelWidth}" y="${y + 2}" width="${round(w)}" height="${row - 4}"><title>${escapeXml(`${group.label} ${label}`)}</title></rect>`);
      parts.push(`<text x="${round(labelWidth + w + 6)}" y="${y + row - 4}" font-size="${FONT - 1}">${escapeXml(label)}</text>`);
      y += row;
    });
    y += gap;
  }
  parts.push('</svg>');
  return parts.join('');
}

/** One bar split into segments proportional to their values (e.g. rotated / pending / expired), with a legend. */
export function stackedBar(title: string, segments: readonly Segment[], options: { readonly width?: number } = {}): string {
  const width = options.width ?? 480;
  const barHeight = 22;
  const height = barHeight + 30;
  const total = segments.reduce((sum, segment) => sum + segment.value, 0);
  const parts = [svgOpen(width, height, title), `<rect class="track" x="0" y="0" width="${width}" height="${barHeight}"/>`];
  let x = 0;
  segments.forEach((segment, index) => {
    const w = total === 0 ? 0 : (segment.value / total) * width;
    parts.push(`<rect class="s${index % 4}" x="${round(x)}" y="0" width="${round(w)}" height="${barHeight}"><title>${escapeXml(`${segment.label}: ${segment.value}`)}</title></rect>`);
    x += w;
  });
  let legendX = 0;
  segments.forEach((segment, index) => {
    const text = `${segment.label} ${segment.value}`;
    parts.push(`<rect class="s${index % 4}" x="${legendX}" y="${barHeight + 10}" width="10" height="10"/>`);
    parts.push(`<text x="${legendX + 14}" y="${barHeight + 19}" font-size="${FONT - 1}">${escapeXml(text)}</text>`);
    legendX += 24 + text.length * 7;
  });
  parts.push('</svg>');
  return parts.join('');
}
