// Run by test/integration/webgpu.test.ts in a process pointed at a Vulkan driver: one kernel the
// GPU must refuse (addN binds every input at once, and 12 inputs and an output are past WebGPU's limit
// of 8 per shader), then a read of its values. Prints what the read did, as JSON.
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { isGpuError } from '../../kernels/backends/gpu-errors';
import { takeValues } from '../../kernels/backends/read';

async function main(): Promise<void> {
  const choice = await selectBackend('webgpu');
  const inputs = Array.from({ length: 12 }, (_, i) => tf.fill([4], i + 1));
  let result: object;
  try {
    result = { values: Array.from(await takeValues(tf.addN(inputs))) };
  } catch (error) {
    result = isGpuError(error) ? { gpuError: error.message } : { other: String(error) };
  }
  console.log(JSON.stringify({ device: choice.device, ...result }));
  process.exit(0);
}

void main();
