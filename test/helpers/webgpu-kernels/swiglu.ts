// Run by test/integration/webgpu-kernels.test.ts in a process of its own (on SwiftShader): SwiGLU's
// value and both inputs' gradients on the webgpu backend, on its WGSL kernel and as tfjs ops, with
// the dispatches of each.
import * as tf from '@tensorflow/tfjs-core';
import { swiglu } from '../../../kernels/ops/swiglu';
import { relativeError } from '../tensors';
import { runCases, valueAndGradsCounted } from '../webgpu-start';

export interface Case {
  name: string;
  shape: number[];
}

export interface Result {
  name: string;
  errors: number[];
  dispatches: { fused: number; composite: number };
}

async function runWay(shape: number[], way: 'fused' | 'composite' | 'none') {
  const gate = tf.randomNormal(shape, 0, 4, 'float32', 7);
  const up = tf.randomNormal(shape, 0, 1, 'float32', 6);
  const dy = tf.randomNormal(shape, 0, 1, 'float32', 8);
  // 'none' (y = gate + up) counts what the loss and the gradient's seed take, to subtract its one dispatch
  const product = (g: tf.Tensor, u: tf.Tensor) => (way === 'none' ? tf.add(g, u) : swiglu(g, u, way === 'composite'));
  const { values, traffic } = await valueAndGradsCounted(product, [gate, up], dy);
  tf.dispose([gate, up, dy]);
  return { values, dispatches: traffic.dispatches - (way === 'none' ? 1 : 0) };
}

runCases<Case, Result>(async (cases) => {
  const results = [];
  for (const c of cases) {
    const none = await runWay(c.shape, 'none');
    const [fused, composite] = [await runWay(c.shape, 'fused'), await runWay(c.shape, 'composite')];
    results.push({
      name: c.name,
      // value, then the gradients of gate and up
      errors: fused.values.map((v, i) => relativeError(v, composite.values[i]!)),
      dispatches: { fused: fused.dispatches - none.dispatches, composite: composite.dispatches - none.dispatches },
    });
  }
  return results;
});
