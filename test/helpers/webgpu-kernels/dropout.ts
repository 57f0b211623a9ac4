// Run by test/integration/webgpu-kernels.test.ts in a process of its own (Dawn's Vulkan loader
// is found through LD_LIBRARY_PATH, read at process start): the webgpu backend on whatever
// adapter Dawn finds, the dropout-mask kernel registered as kernels/backends/backend.ts does, and each
// case's mask from the kernel against the one computed in JavaScript.
import * as tf from '@tensorflow/tfjs-core';
import { dropoutMask, dropoutMaskAttrs, dropoutMaskValues } from '../../../kernels/adapter/dropout';
import { runCases } from '../webgpu-start';

export interface Case {
  shape: [number, number];
  sequences: number;
  rate: number;
  seed: number;
  firstSequence: number;
}

export interface Result {
  shape: [number, number];
  size: number;
  kept: number;
  mismatches: number;
  kernels: string[];
}

runCases<Case, Result>(async (cases) => {
  const results = [];
  for (const c of cases) {
    let values: Float32Array | null = null;
    const { kernels } = await tf.profile(async () => {
      const mask = dropoutMask(c.shape, c.sequences, c.rate, c.seed, c.firstSequence);
      values = (await mask.data()) as Float32Array;
      mask.dispose();
    });
    const expected = dropoutMaskValues(dropoutMaskAttrs(c.shape, c.sequences, c.rate, c.seed, c.firstSequence));
    const got = values as unknown as Float32Array;
    let mismatches = 0;
    for (let i = 0; i < expected.length; i++) if (got[i] !== expected[i]) mismatches++;
    results.push({ shape: c.shape, size: expected.length, kept: expected.reduce((n, v) => n + (v ? 1 : 0), 0), mismatches, kernels: kernels.map((k) => k.name) });
  }
  return results;
});
