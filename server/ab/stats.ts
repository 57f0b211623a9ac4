// The statistics of an A/B report, over the runs of one config that differ only in method and
// seed. Pure: numbers in, numbers out (no Node APIs, no files), so a browser page can use it too.
//
//   mean, sample sd         x̄ = Σx/n,  s = √(Σ(x − x̄)² / (n − 1))
//   95% t-interval          x̄ ± t_{0.975, n−1} · s / √n                 (Student's t)
//   paired difference       d_i = B_i − A_i for each seed i both methods ran; its t-interval is
//                           the paired t-test's; t = d̄ / (s_d/√n), p two-sided
//   detectable difference   δ(n) = (t_{1−α/2, n−1} + t_{power, n−1}) · s_d / √n: the true mean
//                           difference a paired t-test at two-sided level α finds with about that
//                           power (the t form of the normal-approximation sample-size formula)
//   seeds to detect δ       the smallest n with δ(n) ≤ δ
// Student-t quantiles and CDF come from jstat (studentt.inv, studentt.cdf).
import { jStat } from 'jstat';

/** The confidence of every interval in the report, and the test level α = 1 − CONFIDENCE. */
export const CONFIDENCE = 0.95;
/** The power the detectable difference and the seeds needed are computed for. */
export const POWER = 0.8;

export function mean(values: readonly number[]): number {
  if (values.length === 0) throw new Error('mean of no values');
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Sample standard deviation (n − 1 in the denominator); null below two values. */
export function sampleSd(values: readonly number[]): number | null {
  if (values.length < 2) return null;
  const m = mean(values);
  return Math.sqrt(values.reduce((sum, x) => sum + (x - m) ** 2, 0) / (values.length - 1));
}

/** The p-quantile of Student's t with `df` degrees of freedom. */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`tQuantile: p must be in (0, 1), got ${p}`);
  if (!(df > 0)) throw new Error(`tQuantile: degrees of freedom must be > 0, got ${df}`);
  return jStat.studentt.inv(p, df);
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom. */
export function tCdf(t: number, df: number): number {
  if (!(df > 0)) throw new Error(`tCdf: degrees of freedom must be > 0, got ${df}`);
  return jStat.studentt.cdf(t, df);
}

export interface MeanInterval {
  n: number;
  mean: number;
  /** Sample standard deviation; null below two values. */
  sd: number | null;
  /** t_{1−(1−level)/2, n−1} · sd / √n: the interval is mean ± halfWidth; null below two values. */
  halfWidth: number | null;
  level: number;
}

/** The two-sided t-interval of the mean of `values`. */
export function tInterval(values: readonly number[], level = CONFIDENCE): MeanInterval {
  const n = values.length;
  const sd = sampleSd(values);
  const halfWidth = sd === null ? null : tQuantile(1 - (1 - level) / 2, n - 1) * (sd / Math.sqrt(n));
  return { n, mean: mean(values), sd, halfWidth, level };
}

export interface PairedDifference extends MeanInterval {
  /** The seeds both methods ran, ascending. */
  seeds: number[];
  /** B − A for each of `seeds`. */
  differences: number[];
  /** The paired t statistic mean / (sd / √n) and its two-sided p-value; null below two pairs or when every difference is the same. */
  t: number | null;
  p: number | null;
}

/**
 * B − A for each seed both ran (same seed: same data order, dropout and initial A), and the
 * t-interval of their mean: the paired t-test. Seeds only one method ran do not count.
 */
export function pairedDifference(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>, level = CONFIDENCE): PairedDifference | null {
  const seeds = [...a.keys()].filter((seed) => b.has(seed)).sort((x, y) => x - y);
  if (seeds.length === 0) return null;
  const differences = seeds.map((seed) => b.get(seed)! - a.get(seed)!);
  const interval = tInterval(differences, level);
  const se = interval.sd === null ? 0 : interval.sd / Math.sqrt(interval.n);
  const t = se > 0 ? interval.mean / se : null;
  const p = t === null ? null : 2 * (1 - tCdf(Math.abs(t), interval.n - 1));
  return { ...interval, seeds, differences, t, p };
}

export interface PowerOptions {
  /** Two-sided test level; default 1 − CONFIDENCE. */
  alpha?: number;
  /** Default POWER. */
  power?: number;
}

/**
 * δ(n) = (t_{1−α/2, n−1} + t_{power, n−1}) · sd / √n: the true mean paired difference that n
 * seeds detect (paired t-test, two-sided level α) with about the given power, for differences
 * of standard deviation `sd`.
 */
export function detectableDifference(sd: number, n: number, options: PowerOptions = {}): number {
  if (!Number.isInteger(n) || n < 2) throw new Error(`detectableDifference: needs n ≥ 2 seeds, got ${n}`);
  const alpha = options.alpha ?? 1 - CONFIDENCE;
  const power = options.power ?? POWER;
  return (tQuantile(1 - alpha / 2, n - 1) + tQuantile(power, n - 1)) * (sd / Math.sqrt(n));
}

/**
 * The smallest n ≥ 2 with δ(n) ≤ |difference| (see detectableDifference), or null when more than
 * `limit` seeds would be needed (a difference of zero never is).
 */
export function seedsToDetect(sd: number, difference: number, options: PowerOptions & { limit?: number } = {}): number | null {
  const target = Math.abs(difference);
  const limit = options.limit ?? 100_000;
  if (!(sd >= 0) || !Number.isFinite(sd)) throw new Error(`seedsToDetect: sd must be a finite number ≥ 0, got ${sd}`);
  const enough = (n: number) => detectableDifference(sd, n, options) <= target;
  if (target === 0 && sd > 0) return null;
  if (enough(2)) return 2;
  if (!enough(limit)) return null;
  // δ(n) falls as n grows: bisect between a count that is not enough and one that is
  let low = 2;
  let high = limit;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (enough(middle)) high = middle;
    else low = middle;
  }
  return high;
}
