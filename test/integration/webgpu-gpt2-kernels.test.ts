// GPT-2's LayerNorm and gelu_new on their WGSL kernels (kernels/ops/layer-norm.ts, kernels/ops/gelu.ts) on
// the webgpu backend where no GPU is (Dawn on SwiftShader): values and input gradients must equal
// tfjs's gradient of the tfjs ops, in 2 dispatches forward and backward, and LayerNorm without
// the tensors of ones tfjs's gradient of a mean uploads.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runOnSwiftshader, skipWithout, swiftshaderMissing } from '../helpers/swiftshader';

const HELPER = join(import.meta.dirname, '..', 'helpers', 'webgpu-gpt2-kernels.ts');

interface Traffic {
  dispatches: number;
  uploads: number;
}

interface CaseResult {
  name: string;
  errors: number[];
  finite: boolean;
  traffic: { fused: Traffic; composite: Traffic };
}

describe("GPT-2's LayerNorm and gelu_new on their WGSL kernels on the webgpu backend (software Vulkan)", { skip: skipWithout(swiftshaderMissing) }, () => {
  let results: CaseResult[] = [];
  it('runs every case in a process of its own', async () => {
    results = (await runOnSwiftshader<{ results: CaseResult[] }>(HELPER)).results;
    assert.equal(results.length, 6);
  });

  it("gives tfjs's value and gradient to float32 rounding, finite for large inputs", () => {
    for (const r of results) {
      assert.ok(r.finite, `${r.name}: a value or gradient is not finite`);
      assert.equal(r.errors.length, 2);
      r.errors.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}: ${i === 0 ? 'value' : 'gradient'} differs by ${e} relative to its largest element`));
    }
  });

  it('takes 2 dispatches forward and backward, and LayerNorm uploads only its weight and bias', () => {
    for (const { name, traffic } of results) {
      assert.equal(traffic.fused.dispatches, 2, name);
      if (name.startsWith('LayerNorm')) {
        assert.equal(traffic.fused.uploads, 2, name);
        assert.ok(traffic.composite.uploads > traffic.fused.uploads, `${name}: tfjs's gradient uploads its ones`);
      }
      console.log(`${name}: ${traffic.composite.dispatches} dispatches as tfjs ops`);
    }
  });
});
