import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { resolveAdapterSpec } from '../../kernels/adapter/spec';
import { selectBackend } from '../../kernels/backends/backend';
import { initAdapterWeights } from '../../kernels/adapter/init';
import { adaptedLinear, type BaseLinear } from '../../kernels/adapter/linear';
import { seeded } from '../helpers/tensors';

describe('memory', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('the tensor count after 100 forward+backward+Adam steps equals the count after 1', () => {
    const spec = resolveAdapterSpec({ method: 'linchain', dIn: 32, dOut: 24, r: 4, alpha: 8, dropout: 0.1 });
    const init = initAdapterWeights(spec, 1);
    const A = tf.variable(init.A);
    const B = tf.variable(init.B);
    const mixers = init.mixers.map((m) => tf.variable(m));
    const layer: BaseLinear = { weight: seeded([24, 32], 2) as tf.Tensor2D, layout: 'out_in' };
    const x = seeded([2, 6, 32], 3);
    const target = seeded([2, 6, 24], 4);
    const optimizer = tf.train.adam(1e-2);
    let seed = 0;
    const step = () =>
      optimizer.minimize(() => {
        const y = adaptedLinear(x, layer, { spec, weights: { A, B, mixers } }, { training: true, dropoutSeed: seed++ });
        return tf.losses.meanSquaredError(target, y) as tf.Scalar;
      }, false, [A, B, ...mixers]);
    step();
    const afterOne = tf.memory().numTensors;
    for (let i = 0; i < 99; i++) step();
    assert.equal(tf.memory().numTensors, afterOne);
  });
});
