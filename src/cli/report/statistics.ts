/**
 * The few statistics the reports print: nearest-rank percentiles of a sample, a share with its
 * numerator and denominator, and a histogram over fixed bucket edges. Every function is total:
 * an empty sample gives `null` figures, a zero denominator a `null` share, never a division by
 * zero or a NaN in the output.
 */

/**
 * A sample's size and nearest-rank percentiles, in the unit of the sample: the field holding a
 * distribution names the unit (`lifetimeMs`, `latencyMs`, `scopesPerToken`).
 */
export interface Distribution {
  readonly count: number;
  /** Null for an empty sample, like every figure below. */
  readonly min: number | null;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
  readonly max: number | null;
  /** Arithmetic mean, rounded to 3 decimals. */
  readonly mean: number | null;
}

/** `count` of `of`; `share` is count ÷ of in [0, 1], null when `of` is 0. */
export interface Ratio {
  readonly count: number;
  readonly of: number;
  readonly share: number | null;
}

/** One bucket of a {@link Histogram}: values in (previous bucket's `upTo`, `upTo`]. */
export interface HistogramBucket {
  /** Inclusive upper edge, in the sample's unit; null for the last bucket (everything above the last edge). */
  readonly upTo: number | null;
  readonly count: number;
}

/** Counts of a sample per bucket, lowest bucket first. */
export type Histogram = readonly HistogramBucket[];

/**
 * The nearest-rank percentile (the smallest value with at least `q` of the sample at or below
 * it), as GetRotation reports MTTR: always a value of the sample, never an interpolation.
 * @param sorted the sample in ascending order
 * @param q the quantile, 0 < q ≤ 1
 * @returns null for an empty sample
 */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? null;
}

/** The {@link Distribution} of `values` (any order; not modified). */
export function distributionOf(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    count: sorted.length,
    min: sorted[0] ?? null,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p95: percentile(sorted, 0.95),
    p99: percentile(sorted, 0.99),
    max: sorted.at(-1) ?? null,
    mean: sorted.length === 0 ? null : Math.round((sum / sorted.length) * 1000) / 1000,
  };
}

/** `count` of `of` as a {@link Ratio}. */
export function ratioOf(count: number, of: number): Ratio {
  return { count, of, share: of === 0 ? null : count / of };
}

/**
 * Counts `values` into buckets: one per edge (values ≤ the edge and above the previous one), and
 * a last one for values above the last edge.
 * @param edges ascending inclusive upper edges, in the sample's unit
 */
export function histogramOf(values: readonly number[], edges: readonly number[]): Histogram {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (const value of values) {
    const index = edges.findIndex((edge) => value <= edge);
    const bucket = index === -1 ? edges.length : index;
    counts[bucket] = (counts[bucket] ?? 0) + 1;
  }
  return counts.map((count, index) => ({ upTo: edges[index] ?? null, count }));
}
