// Run by test/integration/webgpu-gpt2-kernels.test.ts in a process of its own (on SwiftShader):
// GPT-2's LayerNorm and gelu_new on the webgpu backend, on their WGSL kernels and as tfjs ops
// (tfjs's gradient), with what each sends to the GPU. Prints one JSON line.
import * as tf from '@tensorflow/tfjs-core';
import { geluNew } from '../../kernels/ops/gelu';
import { layerNorm } from '../../kernels/ops/layer-norm';
import { relativeError } from './tensors';
import { compareWays, runHelper, startWebgpu, valueAndGradsCounted, type Way } from './webgpu-start';

interface Case {
  name: string;
  kernel: 'layer-norm' | 'gelu';
  shape: number[];
  /** x's mean and standard deviation. */
  mean: number;
  std: number;
}

const CASES: Case[] = [
  { name: 'LayerNorm, width 48, under a workgroup', kernel: 'layer-norm', shape: [2, 16, 48], mean: 0.3, std: 2 },
  { name: 'LayerNorm, width 200, not a multiple of 64', kernel: 'layer-norm', shape: [3, 5, 200], mean: -1, std: 0.5 },
  { name: 'LayerNorm, width 768, mean 1000 against spread 1', kernel: 'layer-norm', shape: [37, 768], mean: 1000, std: 1 },
  // a workgroup a row: past WebGPU's 65,535 workgroups a dimension
  { name: 'LayerNorm, 65,600 rows', kernel: 'layer-norm', shape: [2, 32800, 8], mean: 0, std: 1 },
  { name: 'gelu_new, [2, 16, 48]', kernel: 'gelu', shape: [2, 16, 48], mean: 0, std: 1 },
  { name: 'gelu_new, [1, 256, 3072], |x| up to ~40', kernel: 'gelu', shape: [1, 256, 3072], mean: 0, std: 8 },
];

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

runHelper(async () => {
  await startWebgpu();
  const results = (await compareWays(CASES, runWay)).map(({ c, fused, composite, own }) => ({
    name: c.name,
    // value, then x's gradient, against tfjs's
    errors: fused.values.map((v, i) => relativeError(v, composite.values[i]!)),
    finite: fused.values.every((v) => v.every(Number.isFinite)),
    traffic: own,
  }));
  console.log(JSON.stringify({ results }));
});
