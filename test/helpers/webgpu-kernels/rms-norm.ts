// Run by test/integration/webgpu-kernels.test.ts in a process of its own (on SwiftShader): RMSNorm's
// value and input gradient on the webgpu backend, three ways: the WGSL kernels, the composite
// version (tfjs ops with the written-out gradient) and tfjs's own gradient of the plain formula,
// with the dispatches of each.
import * as tf from '@tensorflow/tfjs-core';
import { rmsNorm } from '../../../kernels/ops/rms-norm';
import { relativeError } from '../tensors';
import { runCases, valueAndGradsCounted, type Traffic } from '../webgpu-start';

export interface Case {
  name: string;
  shape: number[];
  eps: number;
}

export interface Result {
  name: string;
  fusedErrors: number[];
  compositeErrors: number[];
  traffic: { fused: Traffic; composite: Traffic; autodiff: Traffic };
}

// 'identity' (y = x) counts what the loss and the gradient's seed take, to subtract
type Way = 'fused' | 'composite' | 'autodiff' | 'identity';

/** tfjs's own gradient of the formula as the models computed it before. */
function plainFormula(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), weight);
}

async function runWay(shape: number[], eps: number, way: Way) {
  const width = shape.at(-1)!;
  const x = tf.randomNormal(shape, 0.3, 2, 'float32', 7);
  const weight = tf.randomNormal([width], 1, 0.5, 'float32', 5) as tf.Tensor1D;
  const dy = tf.randomNormal(shape, 0, 1, 'float32', 8);
  const norm = (input: tf.Tensor) => {
    if (way === 'identity') return tf.reshape(input, input.shape);
    return way === 'autodiff' ? plainFormula(input, weight, eps) : rmsNorm(input, weight, eps, way === 'composite');
  };
  const result = await valueAndGradsCounted(norm, [x], dy);
  tf.dispose([x, weight, dy]);
  return result;
}

runCases<Case, Result>(async (cases) => {
  const results = [];
  // the first case twice: its first run makes what later runs find made (tfjs's cached scalars)
  for (const [i, c] of [cases[0]!, ...cases].entries()) {
    const identity = await runWay(c.shape, c.eps, 'identity');
    const [fused, composite, autodiff] = [await runWay(c.shape, c.eps, 'fused'), await runWay(c.shape, c.eps, 'composite'), await runWay(c.shape, c.eps, 'autodiff')];
    if (i === 0) continue;
    const own = (t: typeof fused.traffic) => ({ dispatches: t.dispatches - identity.traffic.dispatches, uploads: t.uploads - identity.traffic.uploads });
    results.push({
      name: c.name,
      // value, then x's gradient, each against tfjs's own gradient of the plain formula
      fusedErrors: fused.values.map((v, i) => relativeError(v, autodiff.values[i]!)),
      compositeErrors: composite.values.map((v, i) => relativeError(v, autodiff.values[i]!)),
      // the norm's own dispatches and uploads, forward and backward
      traffic: { fused: own(fused.traffic), composite: own(composite.traffic), autodiff: own(autodiff.traffic) },
    });
  }
  return results;
});
