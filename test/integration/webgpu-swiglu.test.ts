// SwiGLU's WGSL kernel (kernels/ops/swiglu.ts) on the webgpu backend where no GPU is (Dawn on
// SwiftShader): silu(gate)·up and the gradients of gate and up must equal the tfjs ops', in 3
// dispatches instead of 11.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runOnSwiftshader, skipWithout, swiftshaderMissing } from '../helpers/swiftshader';

const HELPER = join(import.meta.dirname, '..', 'helpers', 'webgpu-swiglu.ts');

interface CaseResult {
  name: string;
  errors: number[];
  dispatches: { fused: number; composite: number };
}

describe('SwiGLU on its WGSL kernel on the webgpu backend (software Vulkan)', { skip: skipWithout(swiftshaderMissing) }, () => {
  let results: CaseResult[] = [];
  it('runs every case in a process of its own', async () => {
    results = (await runOnSwiftshader<{ results: CaseResult[] }>(HELPER)).results;
    assert.equal(results.length, 2);
  });

  it("gives the tfjs ops' value and gradients to float32 rounding", () => {
    for (const r of results) {
      assert.equal(r.errors.length, 3);
      r.errors.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}: ${['value', "gate's gradient", "up's gradient"][i]} differs by ${e} relative to its largest element`));
    }
  });

  it('takes 3 dispatches forward and backward, against 11 as tfjs ops', () => {
    for (const r of results) assert.deepEqual(r.dispatches, { fused: 3, composite: 11 }, r.name);
  });
});
