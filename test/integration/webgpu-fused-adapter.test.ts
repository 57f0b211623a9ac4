// The adapter's fused WGSL kernels (kernels/adapter/fused-adapter.ts) on the webgpu backend, run where no
// GPU is (Dawn on SwiftShader, as test/integration/webgpu.test.ts): an adapted linear layer's value
// and every gradient must equal the composite version's (the same layer as tfjs ops) for each
// method, layout, with and without dropout and bias, past one dispatch dimension, in fewer dispatches;
// past the kernels' largest rank, as tfjs ops.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runOnSwiftshader, skipWithout, swiftshaderMissing } from '../helpers/swiftshader';

const HELPER = join(import.meta.dirname, '..', 'helpers', 'webgpu-fused-adapter.ts');
const skip = skipWithout(swiftshaderMissing);

interface CaseResult {
  name: string;
  fusedExpected: boolean;
  errors: number[];
  sizes: number[];
  fusedKernels: string[];
  compositeKernels: string[];
}

const FUSED = ['MosloraProject', 'MosloraExpand', 'MosloraOuter'];

describe('the adapter on fused kernels on the webgpu backend (software Vulkan)', { skip }, () => {
  let results: CaseResult[] = [];
  it('runs every case in a process of its own', async () => {
    results = (await runOnSwiftshader<{ results: CaseResult[] }>(HELPER)).results;
    assert.equal(results.length, 8);
  });

  it('gives the composite version\'s value and gradients (x, A, the learned mixers, B) to float32 rounding', () => {
    for (const r of results) {
      assert.ok(r.errors.length >= 4, `${r.name}: ${r.errors.length} tensors compared`);
      r.errors.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}: tensor ${i} (${r.sizes[i]} elements) differs by ${e} relative to its largest element`));
    }
  });

  it('runs on the fused kernels up to rank 64, with no dropout-mask tensor, and the composite version on none of them', () => {
    for (const r of results) {
      if (!r.fusedExpected) {
        assert.deepEqual(r.fusedKernels, r.compositeKernels, `${r.name}: past the largest rank, tfjs ops`);
        continue;
      }
      for (const k of FUSED) assert.ok(r.fusedKernels.includes(k), `${r.name}: ${k} did not run: ${r.fusedKernels.join(', ')}`);
      assert.ok(!r.fusedKernels.includes('MosloraDropoutMask'), `${r.name}: a mask tensor was made`);
      assert.ok(!r.compositeKernels.some((k) => FUSED.includes(k)), `${r.name}: the composite version ran a fused kernel`);
    }
  });

  it('takes 7 fewer dispatches for a MoSLoRA layer with dropout (18 → 11, forward and backward)', () => {
    const moslora = results.find((r) => r.name.startsWith('moslora, dropout'))!;
    assert.equal(moslora.compositeKernels.length - moslora.fusedKernels.length, 7);
    for (const r of results.filter((x) => x.fusedExpected)) assert.ok(r.fusedKernels.length < r.compositeKernels.length, `${r.name}: ${r.fusedKernels.length} vs ${r.compositeKernels.length}`);
  });
});
