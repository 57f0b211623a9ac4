// RMSNorm with its gradient written out (kernels/ops/rms-norm.ts) must give what tfjs's own gradient
// of the plain formula gives, on the CPU backends (the webgpu kernels: test/integration/webgpu-kernels.test.ts).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { rmsNorm } from '../../kernels/ops/rms-norm';
import { maxAbsDiff } from '../helpers/tensors';

function plainFormula(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), weight);
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`RMSNorm's written-out gradient on ${backend}`, () => {
    before(async () => {
      await selectBackend(backend);
    });

    for (const shape of [[2, 5, 24], [7, 3], [1, 1, 1, 130]]) {
      it(`equals tfjs's gradient of the formula for x ${shape.join('×')}`, () => {
        const width = shape.at(-1)!;
        const x = tf.randomNormal(shape, 0.5, 3, 'float32', 1);
        const weight = tf.randomNormal([width], 1, 0.5, 'float32', 2) as tf.Tensor1D;
        const dy = tf.randomNormal(shape, 0, 1, 'float32', 3);
        const loss = (norm: (input: tf.Tensor) => tf.Tensor) => (input: tf.Tensor) => tf.sum(tf.mul(norm(input), dy));
        const ours = tf.valueAndGrad(loss((input) => rmsNorm(input, weight, 1e-5)))(x);
        const theirs = tf.valueAndGrad(loss((input) => plainFormula(input, weight, 1e-5)))(x);
        assert.deepEqual(ours.grad.shape, shape);
        assert.ok(Math.abs(ours.value.dataSync()[0]! - theirs.value.dataSync()[0]!) < 1e-4 * Math.abs(theirs.value.dataSync()[0]!) + 1e-5);
        assert.ok(maxAbsDiff(ours.grad, theirs.grad) < 1e-5, `gradient differs by ${maxAbsDiff(ours.grad, theirs.grad)}`);
        assert.ok(maxAbsDiff(rmsNorm(x, weight, 1e-5), plainFormula(x, weight, 1e-5)) < 1e-6);
        tf.dispose([x, weight, dy, ours.value, ours.grad, theirs.value, theirs.grad]);
      });
    }
  });
}
