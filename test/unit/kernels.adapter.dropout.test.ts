// Dropout masks (kernels/adapter/dropout.ts) as the JavaScript backends draw them: the kept share
// and its scale, independence across elements, sequences and seeds, and one mask per sequence
// wherever it sits in a batch.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { dropoutMask, dropoutMaskAttrs, dropoutMaskValues, seedKey } from '../../kernels/adapter/dropout';

/** The mask of [rows, cols] in `sequences` blocks, as values. */
function mask(rows: number, cols: number, sequences: number, rate: number, seed: number, firstSequence = 0): Float32Array {
  return dropoutMaskValues(dropoutMaskAttrs([rows, cols], sequences, rate, seed, firstSequence));
}

const kept = (values: Float32Array) => values.reduce((n, v) => n + (v === 0 ? 0 : 1), 0);

describe('dropout masks', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('keep 1 − rate of the elements, each kept one scaled by 1 / (1 − rate) in float32', () => {
    for (const rate of [0.05, 0.1, 0.5]) {
      const values = mask(64, 1024, 4, rate, 3);
      const n = values.length;
      // binomial: 5 standard deviations either side
      const sd = Math.sqrt(n * rate * (1 - rate));
      assert.ok(Math.abs(kept(values) - n * (1 - rate)) < 5 * sd, `rate ${rate}: ${kept(values)} of ${n} kept`);
      const scale = Math.fround(1 / (1 - rate));
      assert.ok(values.every((v) => v === 0 || v === scale), `rate ${rate}: values other than 0 and ${scale}`);
    }
  });

  it('neighbouring elements, sequences and seeds are drawn independently', () => {
    const rate = 0.5;
    const [a, b] = [mask(2, 32768, 2, rate, 7), mask(2, 32768, 2, rate, 8)];
    const half = 32768;
    const both = (x: (i: number) => boolean, y: (i: number) => boolean, n: number) => {
      let count = 0;
      for (let i = 0; i < n; i++) if (x(i) && y(i)) count++;
      return count / n;
    };
    const dropped = (values: Float32Array, offset = 0) => (i: number) => values[i + offset] === 0;
    // P(both dropped) = rate² for independent draws; 0.25 ± 5 sd of a proportion over 32k
    const tolerance = 5 * Math.sqrt((0.25 * 0.75) / half);
    for (const [what, p] of [
      ['an element and the next', both(dropped(a), dropped(a, 1), half - 1)],
      ['sequence 0 and sequence 1 at the same position', both(dropped(a), dropped(a, half), half)],
      ['seed 7 and seed 8', both(dropped(a), dropped(b), 2 * half)],
    ] as const) {
      assert.ok(Math.abs(p - 0.25) < tolerance, `${what}: both dropped in ${p} of positions`);
    }
  });

  it('a sequence gets the same mask wherever it sits in a shard of the batch', () => {
    const whole = mask(6, 40, 3, 0.3, 11);
    const last = mask(2, 40, 1, 0.3, 11, 2);
    assert.deepEqual(last, whole.subarray(4 * 40));
    assert.notDeepEqual(mask(2, 40, 1, 0.3, 11, 0), last, 'sequence 2 drawn as sequence 0 gets another mask');
  });

  it('distinct seeds, fractional ones included (the trainer\'s per-module seeds), give distinct keys', () => {
    const seeds = [0, -0.5, 1, 1 + 1 / 4096, 1 + 2 / 4096, 2 ** 40, 42_000_126.125];
    assert.equal(new Set(seeds.map(seedKey)).size, seeds.length);
    assert.notDeepEqual(mask(1, 256, 1, 0.5, 1 + 1 / 4096), mask(1, 256, 1, 0.5, 1 + 2 / 4096));
  });

  it('without a seed, each call draws another mask', () => {
    const [a, b] = [dropoutMask([4, 256], 1, 0.5, undefined, 0), dropoutMask([4, 256], 1, 0.5, undefined, 0)];
    assert.notDeepEqual(a.dataSync(), b.dataSync());
    tf.dispose([a, b]);
  });

  it('refuses a rate outside (0, 1) and rows that do not split into the sequences', () => {
    assert.throws(() => dropoutMaskAttrs([4, 8], 1, 1, 0, 0), /rate 1 is outside \(0, 1\)/);
    assert.throws(() => dropoutMaskAttrs([5, 8], 2, 0.1, 0, 0), /5 rows do not split into 2 sequences/);
  });
});
