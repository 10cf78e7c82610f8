/**
 * Small statistics for benchmark figures: percentiles of latencies and the median of repeats.
 *
 * @module
 */

/**
 * The `p`-th percentile (0..100) of `values` by the nearest-rank method; NaN when empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { percentile } from "./stats.ts";
 * const v = Array.from({ length: 100 }, (_, i) => i + 1);
 * assert.equal(percentile(v, 50), 50);
 * assert.equal(percentile(v, 99), 99);
 * assert.equal(percentile([7], 99), 7);
 * assert.ok(Number.isNaN(percentile([], 50)));
 * ```
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/**
 * The median of `values` (the mean of the two middle ones for an even count), ignoring NaN;
 * NaN when nothing is left.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { median } from "./stats.ts";
 * assert.equal(median([3, 1, 2]), 2);
 * assert.equal(median([4, 1, 2, 3]), 2.5);
 * assert.equal(median([NaN, 5]), 5);
 * ```
 */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}
