/**
 * A log-linear histogram of millisecond values (HDR-style), laid out so that a sliding window
 * can keep one per slot in a single typed array.
 *
 * Values below 64 ms get one bucket per whole millisecond. Above, each power of two
 * [2^k, 2^(k+1)) is split into 32 equal buckets, so a bucket is at most 1/32 of its lower bound
 * wide; reporting its midpoint is within 1/64 (1.6 %) of any value in it. Values are clamped to
 * [0, 2^28 ms] (about 3.1 days). 64 + 22 × 32 = 768 buckets in all.
 */

const SUB_BITS = 5;
const SUB = 1 << SUB_BITS;
const LINEAR = 2 * SUB;
const MAX_EXPONENT = 28;

/** Number of buckets of a latency histogram. */
export const HISTOGRAM_BUCKETS = LINEAR + (MAX_EXPONENT - SUB_BITS - 1) * SUB;

/** The largest value kept apart, in milliseconds; larger values share the top bucket. */
export const HISTOGRAM_MAX_MS = 2 ** MAX_EXPONENT;

/** Largest relative error of a value read back from a bucket at or above 64 ms. */
export const HISTOGRAM_RELATIVE_ERROR = 1 / (2 * SUB);

/** The bucket of `ms` (negative and NaN count as 0). */
export function bucketOf(ms: number): number {
  if (!(ms > 0)) return 0;
  const u = ms >= HISTOGRAM_MAX_MS ? HISTOGRAM_MAX_MS - 1 : Math.floor(ms);
  if (u < LINEAR) return u;
  // u < 2^28, so the bit tricks are exact: k is the position of the highest set bit.
  const k = 31 - Math.clz32(u);
  const sub = u >>> (k - SUB_BITS);
  return LINEAR + (k - SUB_BITS - 1) * SUB + (sub - SUB);
}

/** Inclusive lower bound of bucket `index`, in milliseconds. */
export function bucketLowerMs(index: number): number {
  if (index < LINEAR) return index;
  const i = index - LINEAR;
  const k = Math.floor(i / SUB) + SUB_BITS + 1;
  const sub = (i % SUB) + SUB;
  return sub * 2 ** (k - SUB_BITS);
}

/** Width of bucket `index`, in milliseconds. */
export function bucketWidthMs(index: number): number {
  if (index < LINEAR) return 1;
  return 2 ** (Math.floor((index - LINEAR) / SUB) + 1);
}

/**
 * The value at quantile `q` (0..1) of the histogram held in `counts[offset .. offset + 768)`,
 * holding `total` values: the midpoint of the bucket where the running count reaches
 * `ceil(q × total)`. Whole-millisecond buckets report their lower bound, so integer values
 * come back exact. `NaN` when empty.
 */
export function quantileOf(
  counts: ArrayLike<number>,
  offset: number,
  total: number,
  q: number,
): number {
  if (total <= 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
    seen += counts[offset + i] ?? 0;
    if (seen >= rank) {
      return i < LINEAR ? i : bucketLowerMs(i) + bucketWidthMs(i) / 2;
    }
  }
  return bucketLowerMs(HISTOGRAM_BUCKETS - 1);
}
