// Run by test/integration/webgpu-rope.test.ts in a process of its own (on SwiftShader): RoPE's value
// and input gradient on the webgpu backend, on its WGSL kernel and as tfjs ops, with the
// dispatches of each. Prints one JSON line.
import * as tf from '@tensorflow/tfjs-core';
import { applyRope } from '../../kernels/ops/rope';
import { ropeTables } from '../../server/models/layers';
import { relativeError } from './tensors';
import { runHelper, startWebgpu, valueAndGradsCounted } from './webgpu-start';

const CASES: { name: string; shape: [number, number, number, number]; past: number }[] = [
  { name: 'head_dim 8, 2 sequences', shape: [2, 4, 16, 8], past: 0 },
  { name: 'head_dim 64, 12 heads, 256 tokens', shape: [1, 12, 256, 64], past: 0 },
  { name: 'head_dim 64, after 100 cached tokens', shape: [3, 2, 5, 64], past: 100 },
];

async function runWay(c: (typeof CASES)[number], composite: boolean | 'none') {
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

runHelper(async () => {
  await startWebgpu();
  const results = [];
  for (const c of CASES) {
    const none = await runWay(c, 'none');
    const [fused, composite] = [await runWay(c, false), await runWay(c, true)];
    results.push({
      name: c.name,
      // value, then x's gradient
      errors: fused.values.map((v, i) => relativeError(v, composite.values[i]!)),
      dispatches: { fused: fused.dispatches - none.dispatches, composite: composite.dispatches - none.dispatches },
    });
  }
  console.log(JSON.stringify({ results }));
});
