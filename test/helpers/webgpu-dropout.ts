// Run by test/integration/webgpu-dropout.test.ts in a process of its own (Dawn's Vulkan loader
// is found through LD_LIBRARY_PATH, read at process start): the webgpu backend on whatever
// adapter Dawn finds, the dropout-mask kernel registered as kernels/backends/backend.ts does, and each
// case's mask from the kernel against the one computed in JavaScript. Prints one JSON line.
import * as tf from '@tensorflow/tfjs-core';
import { dropoutMask, dropoutMaskAttrs, dropoutMaskValues, DROPOUT_MASK } from '../../kernels/adapter/dropout';
import { runHelper, startWebgpu } from './webgpu-start';

const CASES: { shape: [number, number]; sequences: number; rate: number; seed: number; firstSequence: number }[] = [
  { shape: [12, 50], sequences: 4, rate: 0.05, seed: 0, firstSequence: 0 },
  { shape: [6, 128], sequences: 3, rate: 0.3, seed: 1 + 7 / 4096, firstSequence: 5 },
  // 4.5M elements: 70,400 workgroups of 64, past WebGPU's 65,535 a dimension, so the backend
  // spreads the dispatch over two dimensions
  { shape: [4096, 1100], sequences: 2, rate: 0.5, seed: 42_000_126, firstSequence: 1 },
];

async function main() {
  await startWebgpu();
  const results = [];
  for (const c of CASES) {
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
  console.log(JSON.stringify({ kernel: DROPOUT_MASK, results }));
}

runHelper(main);
