// The panel's smoothing (webview/lib/ema.ts), TensorBoard's debiased EMA, against the formula.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ema, ema } from '../../webview/lib/ema';

describe('smoothing (TensorBoard debiased EMA)', () => {
  it('matches the formula, first value unchanged', () => {
    const xs = [3, 1, 4, 1, 5, 9, 2, 6];
    const w = 0.6;
    let last = 0;
    const expected = xs.map((x, i) => (last = w * last + (1 - w) * x) / (1 - w ** (i + 1)));
    assert.deepEqual(ema(xs, w), expected);
    assert.ok(Math.abs(ema(xs, w)[0]! - 3) < 1e-12, 'the first smoothed value is the first value');
    assert.deepEqual(ema(xs, 0), xs);
  });

  it('skips non-finite points (a gap), keeps a constant series constant, streams', () => {
    const out = ema([2, Number.NaN, 2, 2], 0.9);
    assert.ok(Number.isNaN(out[1]));
    for (const i of [0, 2, 3]) assert.ok(Math.abs(out[i]! - 2) < 1e-12);
    const e = new Ema(0.5);
    [1, 2, 3].forEach((x) => e.push(x));
    assert.deepEqual(e.values, ema([1, 2, 3], 0.5));
    assert.throws(() => new Ema(1), /\[0, 1\)/);
  });
});
