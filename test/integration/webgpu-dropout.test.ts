// The dropout-mask kernel (kernels/adapter/dropout.ts) in a WGSL shader on the webgpu backend, run where
// no GPU is (Dawn on SwiftShader, as test/integration/webgpu.test.ts): its masks must equal the
// ones computed in JavaScript for the other backends bit for bit, or the curves of two backends
// with dropout part ways.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runOnSwiftshader, skipWithout, swiftshaderMissing } from '../helpers/swiftshader';

const HELPER = join(import.meta.dirname, '..', 'helpers', 'webgpu-dropout.ts');
const skip = skipWithout(swiftshaderMissing);

interface CaseResult {
  shape: [number, number];
  size: number;
  kept: number;
  mismatches: number;
  kernels: string[];
}

describe('dropout masks on the webgpu backend (software Vulkan)', { skip }, () => {
  it('the WGSL kernel computes the masks the JavaScript one does, bit for bit, past one dispatch dimension too', async () => {
    const { kernel, results } = await runOnSwiftshader<{ kernel: string; results: CaseResult[] }>(HELPER);
    assert.equal(results.length, 3);
    for (const r of results) {
      assert.deepEqual(r.kernels, [kernel], `[${r.shape.join(', ')}]: the mask came from ${r.kernels.join(', ') || 'no kernel'}`);
      assert.ok(r.kept > 0 && r.kept < r.size, `[${r.shape.join(', ')}]: ${r.kept} of ${r.size} kept`);
      assert.equal(r.mismatches, 0, `[${r.shape.join(', ')}]: ${r.mismatches} of ${r.size} elements differ`);
    }
  });
});
