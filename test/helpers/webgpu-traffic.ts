// On Dawn's null device: what bench/webgpu-host.ts counts for a few known kernels (run by
// test/integration/webgpu-host.test.ts; prints one JSON line).
import * as tf from '@tensorflow/tfjs-core';
import { countGpuTraffic, DAWN_NULL_DEVICE } from '../../bench/webgpu-host';
import { runHelper, startWebgpu } from './webgpu-start';

runHelper(async () => {
  await startWebgpu([...DAWN_NULL_DEVICE]);
  // 4,096 elements: above the size under which tfjs-webgpu computes on the CPU
  const a = tf.fill([64, 64], 1);
  const b = tf.tensor2d(new Float32Array(4096), [64, 64]);
  const c = tf.tensor2d(new Float32Array(4096), [64, 64]);
  const { traffic, stop } = countGpuTraffic();
  const sum = tf.add(b, c); // uploads b and c, one dispatch
  const same = tf.cast(sum, 'float32'); // no dispatch: the same type
  const product = tf.matMul(same, a); // a was made on the GPU: no upload; one dispatch
  await product.data(); // one readback
  stop();
  await tf.add(b, c).data(); // not counted: the counts stopped
  console.log(JSON.stringify(traffic));
});
