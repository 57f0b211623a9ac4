// Products without transpose flags (kernels/ops/matmul.ts) on wasm and cpu: values and gradients
// equal tf.matMul's with flags, for 2-D, batched and constant operands.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { matMul, matMulByConstant } from '../../kernels/ops/matmul';
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
      // Batched products run one 2-D product per batch entry on wasm.
      [[3, 5, 7], [3, 7, 4], false, false],
      [[2, 3, 5, 7], [2, 3, 4, 7], false, true],
      [[2, 3, 7, 5], [2, 3, 7, 64], true, false],
      [[2, 1, 7, 5], [2, 1, 4, 7], true, true],
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

    for (const [sa, sb, ta, tb] of cases) {
      it(`gradients of [${sa}]${ta ? 'ᵀ' : ''} · [${sb}]${tb ? 'ᵀ' : ''} equal tf.matMul's`, () => {
        const a = seeded(sa, 3);
        const b = seeded(sb, 4);
        const weights = seeded(tf.matMul(a, b, ta, tb).shape, 5);
        type Product = (x: tf.Tensor, y: tf.Tensor, ta: boolean, tb: boolean) => tf.Tensor;
        const loss = (mm: Product) => (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(mm(x, y, ta, tb), weights));
        const [ga, gb] = tf.grads(loss(matMul))([a, b]);
        const [ra, rb] = tf.grads(loss((x, y, p, q) => tf.matMul(x, y, p, q)))([a, b]);
        assert.ok(maxAbsDiff(ga!, ra!) < 1e-5, 'd/da');
        assert.ok(maxAbsDiff(gb!, rb!) < 1e-5, 'd/db');
      });
    }

    for (const [sa, sb, ta, tb] of cases) {
      it(`[${sa}]${ta ? 'ᵀ' : ''} · constant [${sb}]${tb ? 'ᵀ' : ''}: tf.matMul's value and gradient of a, and no product for b's`, async () => {
        const a = seeded(sa, 6);
        const b = seeded(sb, 7);
        const weights = seeded(tf.matMul(a, b, ta, tb).shape, 8);
        const loss = (x: tf.Tensor) => tf.sum(tf.mul(matMulByConstant(x, b, ta, tb), weights));
        assert.ok(maxAbsDiff(matMulByConstant(a, b, ta, tb), tf.matMul(a, b, ta, tb)) < 1e-5, 'value');
        const products = async (run: () => unknown) => (await tf.profile(() => tf.tidy(() => void run()))).kernels.filter((k) => k.name === 'BatchMatMul').length;
        const forward = await products(() => loss(a));
        const withGradient = await products(() => tf.grad(loss)(a));
        // the gradient of a takes as many products as the forward pass; b's would take as many again
        assert.equal(withGradient, 2 * forward, `${withGradient} products for the forward pass and a's gradient, ${forward} for the forward pass`);
        const reference = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, b, ta, tb), weights)))(a);
        assert.ok(maxAbsDiff(tf.grad(loss)(a), reference) < 1e-5, 'd/da');
      });
    }

    it('a constant of vocabulary width (lm_head, here [1024, 8200]: three blocks of columns on wasm) gives tf.matMul\'s value and gradient', () => {
      const a = seeded([4, 1024], 9);
      const b = seeded([1024, 8200], 10);
      const weights = seeded([4, 8200], 11);
      const ours = matMulByConstant(a, b);
      assert.deepEqual(ours.shape, [4, 8200]);
      assert.ok(maxAbsDiff(ours, tf.matMul(a, b)) < 1e-4, 'value');
      const gradient = (mm: (x: tf.Tensor) => tf.Tensor) => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(mm(x), weights)))(a);
      const reference = gradient((x) => tf.matMul(x, b));
      // sums of 8,200 terms of size ~1: float32 rounding, relative to the largest entry
      const scale = tf.max(tf.abs(reference)).dataSync()[0]!;
      assert.ok(maxAbsDiff(gradient((x) => matMulByConstant(x, b)), reference) < 1e-5 * scale, 'd/da');
    });
  });
}
