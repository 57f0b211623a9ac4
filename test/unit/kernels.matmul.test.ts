import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backend';
import { matMul } from '../../kernels/matmul';
import { maxAbsDiff, seeded } from '../helpers/tensors';

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`matMul without transpose flags on ${backend}`, () => {
    before(async () => {
      await selectBackend(backend);
    });

    // Shapes chosen so that both the direct and the flipped form get picked.
    const cases: [number[], number[], boolean, boolean][] = [
      [[5, 7], [7, 3], false, false],
      [[5, 7], [3, 7], false, true],
      [[64, 7], [3, 7], false, true],
      [[7, 5], [7, 3], true, false],
      [[7, 64], [7, 3], true, false],
      [[7, 5], [3, 7], true, true],
      [[2, 5, 7], [2, 3, 7], false, true],
      [[2, 7, 5], [2, 7, 3], true, false],
    ];
    for (const [sa, sb, ta, tb] of cases) {
      it(`[${sa}]${ta ? 'ᵀ' : ''} · [${sb}]${tb ? 'ᵀ' : ''} equals tf.matMul with flags`, () => {
        const a = seeded(sa, 1);
        const b = seeded(sb, 2);
        const ours = matMul(a, b, ta, tb);
        const reference = tf.matMul(a, b, ta, tb);
        assert.deepEqual(ours.shape, reference.shape);
        assert.ok(maxAbsDiff(ours, reference) < 1e-5);
      });
    }

    it('has a gradient (through transpose and matMul)', () => {
      const a = seeded([4, 6], 3);
      const b = seeded([5, 6], 4);
      const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(matMul(x, y, false, true)))([a, b]);
      const [ra, rb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y, false, true)))([a, b]);
      assert.ok(maxAbsDiff(ga!, ra!) < 1e-5 && maxAbsDiff(gb!, rb!) < 1e-5);
    });
  });
}
