// Run by test/integration/webgpu-kernels.test.ts in a process of its own (on SwiftShader): GPT-2's
// LayerNorm and gelu_new on the webgpu backend, on their WGSL kernels and as tfjs ops (tfjs's
// gradient), with what each sends to the GPU.
import * as tf from '@tensorflow/tfjs-core';
import { geluNew } from '../../../kernels/ops/gelu';
import { layerNorm } from '../../../kernels/ops/layer-norm';
import { relativeError } from '../tensors';
import { compareWays, runCases, valueAndGradsCounted, type Traffic, type Way } from '../webgpu-start';

export interface Case {
  name: string;
  kernel: 'layer-norm' | 'gelu';
  shape: number[];
  /** x's mean and standard deviation. */
  mean: number;
  std: number;
}

export interface Result {
  name: string;
  errors: number[];
  finite: boolean;
  traffic: { fused: Traffic; composite: Traffic };
}

async function runWay(c: Case, way: Way) {
  const width = c.shape.at(-1)!;
  const x = tf.randomNormal(c.shape, c.mean, c.std, 'float32', 7);
  const weight = tf.randomNormal([width], 1, 0.5, 'float32', 5) as tf.Tensor1D;
  const bias = tf.randomNormal([width], 0, 0.5, 'float32', 6) as tf.Tensor1D;
  const dy = tf.randomNormal(c.shape, 0, 1, 'float32', 8);
  const f = (input: tf.Tensor) => {
    if (way === 'identity') return tf.reshape(input, input.shape);
    return c.kernel === 'gelu' ? geluNew(input, way === 'composite') : layerNorm(input, weight, bias, 1e-5, way === 'composite');
  };
  const result = await valueAndGradsCounted(f, [x], dy);
  tf.dispose([x, weight, bias, dy]);
  return result;
}

runCases<Case, Result>(async (cases) =>
  (await compareWays(cases, runWay)).map(({ c, fused, composite, own }) => ({
    name: c.name,
    // value, then x's gradient, against tfjs's
    errors: fused.values.map((v, i) => relativeError(v, composite.values[i]!)),
    finite: fused.values.every((v) => v.every(Number.isFinite)),
    traffic: own,
  })),
);
