// TensorBoard's smoothing: a debiased exponential moving average over the logged points.
//   ema_t = w·ema_{t−1} + (1 − w)·x_t,  ema_0 = 0,  shown as ema_t / (1 − w^t)
// where t counts the finite points so far (not the step number). Without the division the
// curve would start near 0 and creep up; with it, the first smoothed value is x_1 itself.
// A non-finite point (a diverged loss, logged as null) is shown as a gap and does not enter
// the average, as in TensorBoard.

/** Incremental form, so a streaming run costs O(new points) per update. */
export class Ema {
  private last = 0;
  private count = 0;
  /** Smoothed values so far, NaN where the input was not finite. */
  readonly values: number[] = [];

  constructor(readonly weight: number) {
    if (!(weight >= 0 && weight < 1)) throw new RangeError(`smoothing weight must be in [0, 1), got ${weight}`);
  }

  push(x: number): number {
    if (!Number.isFinite(x)) {
      this.values.push(Number.NaN);
      return Number.NaN;
    }
    this.last = this.weight * this.last + (1 - this.weight) * x;
    this.count++;
    const smoothed = this.last / (1 - this.weight ** this.count);
    this.values.push(smoothed);
    return smoothed;
  }
}

/** The whole series at once. */
export function ema(values: ArrayLike<number>, weight: number): number[] {
  const e = new Ema(weight);
  for (let i = 0; i < values.length; i++) e.push(values[i]!);
  return e.values;
}
