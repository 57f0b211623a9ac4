// RoPE's WGSL kernel (kernels/ops/rope.ts) on the webgpu backend where no GPU is (Dawn on SwiftShader):
// the rotation and its gradient (the rotation back) must equal the tfjs ops' value and gradient,
// in 2 dispatches instead of 14.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runOnSwiftshader, skipWithout, swiftshaderMissing } from '../helpers/swiftshader';

const HELPER = join(import.meta.dirname, '..', 'helpers', 'webgpu-rope.ts');

interface CaseResult {
  name: string;
  errors: number[];
  dispatches: { fused: number; composite: number };
}

describe('RoPE on its WGSL kernel on the webgpu backend (software Vulkan)', { skip: skipWithout(swiftshaderMissing) }, () => {
  let results: CaseResult[] = [];
  it('runs every case in a process of its own', async () => {
    results = (await runOnSwiftshader<{ results: CaseResult[] }>(HELPER)).results;
    assert.equal(results.length, 3);
  });

  it("gives the tfjs ops' value and gradient to float32 rounding", () => {
    for (const r of results) {
      assert.equal(r.errors.length, 2);
      r.errors.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}: ${i === 0 ? 'value' : 'gradient'} differs by ${e} relative to its largest element`));
    }
  });

  it('takes 2 dispatches forward and backward, against 14 as tfjs ops', () => {
    for (const r of results) assert.deepEqual(r.dispatches, { fused: 2, composite: 14 }, r.name);
  });
});
