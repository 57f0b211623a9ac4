// The scale bench's loss gap over seeds: each precision's final loss against float32's at the same seed, and their mean with its 95% t-interval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairLossGap, type LossGapCase } from '../../bench/scale';

const run = (precision: LossGapCase['precision'], seed: number, finalLoss: number, evalLoss: number | null = null): LossGapCase => ({
  precision, seed, formats: precision, final_loss: finalLoss, eval_loss: evalLoss, relative_difference: null, wall_s: 1,
});

test('pairLossGap pairs each seed with float32 at that seed, and gives the mean difference its t-interval', () => {
  const cases = [
    run('float32', 42, 2.0, 1.0), run('nf4', 42, 2.1, 1.1),
    run('float32', 43, 4.0, 2.0), run('nf4', 43, 4.0, 2.0),
    run('float32', 44, 1.0, 1.0), run('nf4', 44, 1.02, 1.0),
  ];
  const [nf4, ...rest] = pairLossGap(cases);
  assert.equal(rest.length, 0);
  // relative differences 0.05, 0, 0.02: mean 0.07/3; sd by hand; t_{0.975, 2} = 4.302653
  const d = [0.05, 0, 0.02];
  const m = d.reduce((a, b) => a + b) / 3;
  const sd = Math.sqrt(d.reduce((a, x) => a + (x - m) ** 2, 0) / 2);
  assert.equal(nf4!.precision, 'nf4');
  assert.equal(nf4!.seeds, 3);
  assert.equal(nf4!.mean_relative_difference, Number(m.toFixed(5)));
  assert.equal(nf4!.difference_half_width_95, Number(((4.302653 * sd) / Math.sqrt(3)).toFixed(5)));
  assert.equal(nf4!.lowest_difference, 0);
  assert.equal(nf4!.highest_difference, 0.05);
  assert.equal(nf4!.eval_mean_relative_difference, Number((0.1 / 3).toFixed(5)));
});

test('pairLossGap with one seed has no interval, and no eval difference where a run has no eval loss', () => {
  const [int8] = pairLossGap([run('float32', 42, 2.0), run('int8', 42, 1.9)]);
  assert.equal(int8!.mean_relative_difference, -0.05);
  assert.equal(int8!.difference_half_width_95, null);
  assert.equal(int8!.eval_mean_relative_difference, null);
  assert.equal(int8!.eval_difference_half_width_95, null);
});
