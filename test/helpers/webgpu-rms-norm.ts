// Run by test/integration/webgpu-rms-norm.test.ts in a process of its own (on SwiftShader): RMSNorm's
// value and input gradient on the webgpu backend, three ways: the WGSL kernels, the composite
// version (tfjs ops with the written-out gradient) and tfjs's own gradient of the plain formula,
// with the dispatches of each. Prints one JSON line.
import * as tf from '@tensorflow/tfjs-core';
import { rmsNorm } from '../../kernels/ops/rms-norm';
import { relativeError } from './tensors';
import { runHelper, startWebgpu, valueAndGradsCounted } from './webgpu-start';

const CASES: { name: string; shape: number[]; eps: number }[] = [
  { name: 'width 48, under a workgroup', shape: [2, 16, 48], eps: 1e-5 },
  { name: 'width 200, not a multiple of 64', shape: [3, 5, 200], eps: 1e-6 },
  { name: 'width 768, 2-D', shape: [37, 768], eps: 1e-5 },
  // a workgroup a row: past WebGPU's 65,535 workgroups a dimension
  { name: '65,600 rows', shape: [2, 32800, 8], eps: 1e-5 },
];

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

runHelper(async () => {
  await startWebgpu();
  const results = [];
  // the first case twice: its first run makes what later runs find made (tfjs's cached scalars)
  for (const [i, c] of [CASES[0]!, ...CASES].entries()) {
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
  console.log(JSON.stringify({ results }));
});
