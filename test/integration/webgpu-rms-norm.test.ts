// RMSNorm's WGSL kernels (kernels/ops/rms-norm.ts) on the webgpu backend where no GPU is (Dawn on
// SwiftShader): the norm's value and its input's gradient must equal tfjs's own gradient of the
// plain formula, on the kernels and as the composite version, in 2 dispatches instead of 19 and
// without the tensor of ones tfjs's gradient uploads.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runOnSwiftshader, skipWithout, swiftshaderMissing } from '../helpers/swiftshader';

const HELPER = join(import.meta.dirname, '..', 'helpers', 'webgpu-rms-norm.ts');

interface Traffic {
  dispatches: number;
  uploads: number;
}

interface CaseResult {
  name: string;
  fusedErrors: number[];
  compositeErrors: number[];
  traffic: { fused: Traffic; composite: Traffic; autodiff: Traffic };
}

describe('RMSNorm on its WGSL kernels on the webgpu backend (software Vulkan)', { skip: skipWithout(swiftshaderMissing) }, () => {
  let results: CaseResult[] = [];
  it('runs every case in a process of its own', async () => {
    results = (await runOnSwiftshader<{ results: CaseResult[] }>(HELPER)).results;
    assert.equal(results.length, 4);
  });

  it("gives tfjs's value and gradient to float32 rounding, on the kernels and as tfjs ops", () => {
    for (const r of results) {
      for (const [way, errors] of [['fused', r.fusedErrors], ['composite', r.compositeErrors]] as const) {
        assert.equal(errors.length, 2);
        errors.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}, ${way}: ${i === 0 ? 'value' : 'gradient'} differs by ${e} relative to its largest element`));
      }
    }
  });

  it('takes 2 dispatches forward and backward (19 with tfjs\'s gradient, 14 as tfjs ops) and uploads only the weight', () => {
    for (const { name, traffic } of results) {
      assert.deepEqual(traffic.fused, { dispatches: 2, uploads: 1 }, name);
      assert.equal(traffic.composite.dispatches, 14, name);
      assert.equal(traffic.autodiff.dispatches, 19, name);
      assert.ok(traffic.autodiff.uploads > traffic.composite.uploads, `${name}: tfjs's gradient uploads its ones`);
    }
  });
});
