// The A/B statistics (server/ab/stats.ts) against values worked by hand and by scipy
// (scripts/reference/ab_stats.py wrote test/fixtures/ab/stats-reference.json).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { detectableDifference, mean, pairedDifference, sampleSd, seedsToDetect, tCdf, tInterval, tQuantile } from '../../server/ab/stats';

// Written by `python3 scripts/reference/ab_stats.py > test/fixtures/ab/stats-reference.json` (scipy).
interface Reference {
  quantiles: { p: number; df: number; q: number }[];
  cdfs: { t: number; df: number; cdf: number }[];
  intervals: { values: number[]; mean: number; sd: number; low: number; high: number }[];
  pairs: { a: number[]; b: number[]; mean: number; sd: number; low: number; high: number; t: number; p: number }[];
  detectable: { sd: number; n: number; delta: number }[];
  seeds: { sd: number; difference: number; n: number; exactPowerAtN: number }[];
}
const reference = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'ab', 'stats-reference.json'), 'utf8')) as Reference;

/** |actual − expected| ≤ tolerance · max(1, |expected|). */
function close(actual: number | null, expected: number, tolerance: number, what: string) {
  assert.ok(actual !== null && Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

const bySeed = (values: number[]) => new Map(values.map((v, i) => [i + 1, v]));

describe('A/B statistics', () => {
  it('by hand: mean, sample sd and the 95% t-interval of 1, 2, 3, 4', () => {
    // mean 2.5; s² = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3; t_{0.975,3} = 3.182 (printed tables);
    // half-width 3.182 · √(5/3) / 2 = 2.054
    const interval = tInterval([1, 2, 3, 4]);
    assert.equal(interval.mean, 2.5);
    close(interval.sd, Math.sqrt(5 / 3), 1e-15, 'sd');
    close(interval.halfWidth, 2.054, 5e-4, 'half-width');
  });

  it('by hand: the paired difference of three seeds', () => {
    // B − A = −0.03, +0.01, −0.04: mean −0.02, s² = (0.01² + 0.03² + 0.02²) / 2 = 0.0007,
    // t_{0.975,2} = 4.303: half-width 4.303 · √0.0007 / √3 = 0.0657; t = −0.02 / (√0.0007/√3) = −1.309
    const paired = pairedDifference(bySeed([2.31, 2.35, 2.29]), bySeed([2.28, 2.36, 2.25]))!;
    assert.deepEqual(paired.seeds, [1, 2, 3]);
    paired.differences.forEach((d, i) => close(d, [-0.03, 0.01, -0.04][i]!, 1e-12, `difference ${i}`));
    close(paired.mean, -0.02, 1e-12, 'mean');
    close(paired.sd, Math.sqrt(0.0007), 1e-12, 'sd');
    close(paired.halfWidth, 0.0657, 1e-4, 'half-width');
    close(paired.t, -1.309, 1e-3, 't');
  });

  it('Student-t quantiles and CDF agree with scipy', () => {
    for (const { p, df, q } of reference.quantiles) close(tQuantile(p, df), q, 1e-6, `t quantile p ${p} df ${df}`);
    for (const { t, df, cdf } of reference.cdfs) close(tCdf(t, df), cdf, 1e-7, `t cdf ${t} df ${df}`);
  });

  it('t-intervals of a mean agree with scipy (ttest_1samp)', () => {
    for (const expected of reference.intervals) {
      const interval = tInterval(expected.values);
      close(interval.mean, expected.mean, 1e-12, 'mean');
      close(interval.sd, expected.sd, 1e-12, 'sd');
      close(interval.mean - interval.halfWidth!, expected.low, 1e-6, 'low');
      close(interval.mean + interval.halfWidth!, expected.high, 1e-6, 'high');
    }
  });

  it('paired differences agree with scipy (ttest_rel): interval, t and p', () => {
    for (const expected of reference.pairs) {
      const paired = pairedDifference(bySeed(expected.a), bySeed(expected.b))!;
      close(paired.mean, expected.mean, 1e-12, 'mean');
      close(paired.sd, expected.sd, 1e-12, 'sd');
      close(paired.mean - paired.halfWidth!, expected.low, 1e-6, 'low');
      close(paired.mean + paired.halfWidth!, expected.high, 1e-6, 'high');
      close(paired.t, expected.t, 1e-9, 't');
      close(paired.p, expected.p, 1e-6, 'p');
    }
  });

  it('pairs only the seeds both methods ran', () => {
    const paired = pairedDifference(new Map([[1, 1], [2, 2], [3, 3]]), new Map([[3, 5], [1, 2], [9, 0]]))!;
    assert.deepEqual(paired.seeds, [1, 3]);
    assert.deepEqual(paired.differences, [1, 2]);
    assert.equal(pairedDifference(new Map([[1, 1]]), new Map([[2, 1]])), null);
  });

  it('one value has a mean but no sd, interval, t or p', () => {
    assert.equal(sampleSd([3]), null);
    assert.deepEqual(tInterval([3]), { n: 1, mean: 3, sd: null, halfWidth: null, level: 0.95 });
    const paired = pairedDifference(bySeed([1]), bySeed([1.5]))!;
    assert.equal(paired.mean, 0.5);
    assert.equal(paired.t, null);
    assert.equal(paired.p, null);
    assert.throws(() => mean([]), /mean of no values/);
  });

  it('the detectable difference and the seeds needed agree with the formula evaluated with scipy', () => {
    for (const { sd, n, delta } of reference.detectable) close(detectableDifference(sd, n), delta, 1e-6, `δ(${n}) at sd ${sd}`);
    for (const { sd, difference, n, exactPowerAtN } of reference.seeds) {
      assert.equal(seedsToDetect(sd, difference), n, `seeds to detect ${difference} at sd ${sd}`);
      // the formula's "about 80%": the paired t-test's exact power at that n (noncentral t)
      assert.ok(exactPowerAtN >= 0.79, `exact power ${exactPowerAtN} at n ${n}`);
    }
  });

  it('the seeds needed are the first count whose detectable difference reaches the target', () => {
    const n = seedsToDetect(0.03, 0.02)!;
    assert.ok(detectableDifference(0.03, n) <= 0.02);
    assert.ok(detectableDifference(0.03, n - 1) > 0.02);
    assert.equal(seedsToDetect(0.03, -0.02), n, 'the sign of the difference does not matter');
    assert.equal(seedsToDetect(0.05, 0), null, 'no count of seeds detects a difference of zero');
    assert.equal(seedsToDetect(0.05, 1e-6, { limit: 1000 }), null, 'more than the limit');
  });
});
