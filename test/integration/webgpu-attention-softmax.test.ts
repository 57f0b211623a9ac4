// Attention's softmax(scores·scale + mask) on its WGSL kernels (kernels/ops/attention-softmax.ts) on
// the webgpu backend where no GPU is (Dawn on SwiftShader): value and gradient must equal the
// float64 ones, in 2 dispatches forward and backward instead of 8; also past 65,535 rows, where
// tfjs-backend-webgpu's own Softmax (4.22) reads the wrong rows.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runOnSwiftshader, skipWithout, swiftshaderMissing } from '../helpers/swiftshader';

const HELPER = join(import.meta.dirname, '..', 'helpers', 'webgpu-attention-softmax.ts');

interface CaseResult {
  name: string;
  errors: { fused: number[]; composite: number[] };
  finite: boolean;
  dispatches: { fused: number; composite: number };
}

describe("attention's softmax on its WGSL kernels on the webgpu backend (software Vulkan)", { skip: skipWithout(swiftshaderMissing) }, () => {
  let results: CaseResult[] = [];
  it('runs every case in a process of its own', async () => {
    results = (await runOnSwiftshader<{ results: CaseResult[] }>(HELPER)).results;
    assert.equal(results.length, 4);
  });

  it('gives the float64 value and gradient to float32 rounding: masked, with cached keys, with large scores, past 65,535 rows', () => {
    for (const r of results) {
      assert.ok(r.finite, `${r.name}: a value or gradient is not finite`);
      assert.equal(r.errors.fused.length, 2);
      r.errors.fused.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}: ${i === 0 ? 'value' : 'gradient'} differs by ${e} relative to its largest element`));
      console.log(`${r.name}: tfjs ops ${r.errors.composite.map((e) => e.toExponential(1)).join(', ')}`);
    }
  });

  it('takes 2 dispatches forward and backward, against 8 as tfjs ops', () => {
    for (const r of results) assert.deepEqual(r.dispatches, { fused: 2, composite: 8 }, r.name);
  });
});
