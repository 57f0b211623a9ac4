// Run by test/integration/webgpu-kernels.test.ts in a process of its own (on SwiftShader): RoPE's value
// and input gradient on the webgpu backend, on its WGSL kernel and as tfjs ops, with the
// dispatches of each.
import * as tf from '@tensorflow/tfjs-core';
import { applyRope } from '../../../kernels/ops/rope';
import { ropeTables } from '../../../server/models/layers';
import { relativeError } from '../tensors';
import { runCases, valueAndGradsCounted } from '../webgpu-start';

export interface Case {
  name: string;
  shape: [number, number, number, number];
  past: number;
}

export interface Result {
  name: string;
  errors: number[];
  dispatches: { fused: number; composite: number };
}

async function runWay(c: Case, composite: boolean | 'none') {
  const [, , T, hd] = c.shape;
  const frequencies = Float32Array.from({ length: hd / 2 }, (_, i) => 1 / Math.pow(10000, (2 * i) / hd));
  const { cos, sin } = ropeTables(frequencies, c.past, T);
  const x = tf.randomNormal(c.shape, 0, 1, 'float32', 7) as tf.Tensor4D;
  const dy = tf.randomNormal(c.shape, 0, 1, 'float32', 8);
  // 'none' (y = x) counts what the loss and the gradient's seed take, to subtract
  const rope = (input: tf.Tensor4D) => (composite === 'none' ? tf.reshape(input, input.shape) : applyRope(input, cos, sin, composite));
  const { values, traffic } = await valueAndGradsCounted((input) => rope(input as tf.Tensor4D), [x], dy);
  tf.dispose([x, dy, cos, sin]);
  return { values, dispatches: traffic.dispatches };
}

runCases<Case, Result>(async (cases) => {
  const results = [];
  for (const c of cases) {
    const none = await runWay(c, 'none');
    const [fused, composite] = [await runWay(c, false), await runWay(c, true)];
    results.push({
      name: c.name,
      // value, then x's gradient
      errors: fused.values.map((v, i) => relativeError(v, composite.values[i]!)),
      dispatches: { fused: fused.dispatches - none.dispatches, composite: composite.dispatches - none.dispatches },
    });
  }
  return results;
});
