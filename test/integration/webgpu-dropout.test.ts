// The dropout-mask kernel (kernels/dropout.ts) in a WGSL shader on the webgpu backend, run where
// no GPU is (Dawn on SwiftShader, as test/integration/webgpu.test.ts): its masks must equal the
// ones computed in JavaScript for the other backends bit for bit, or the curves of two backends
// with dropout part ways.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const ENV = { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER, LD_LIBRARY_PATH: dirname(SWIFTSHADER), XDG_RUNTIME_DIR: tmpdir() };
const HELPER = join(import.meta.dirname, '..', 'helpers', 'webgpu-dropout.ts');
const missing = existsSync(SWIFTSHADER) ? null : `no SwiftShader at ${SWIFTSHADER}: install Debian's chromium (apt-get install chromium) to run the webgpu tests`;
// Locally a missing driver skips this file with the reason; in CI it must run, so it fails.
const skip = missing !== null && !process.env.CI ? missing : false;

interface CaseResult {
  shape: [number, number];
  size: number;
  kept: number;
  mismatches: number;
  kernels: string[];
}

describe('dropout masks on the webgpu backend (software Vulkan)', { skip }, () => {
  it('the WGSL kernel computes the masks the JavaScript one does, bit for bit, past one dispatch dimension too', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', HELPER], { env: ENV, maxBuffer: 16 * 1024 * 1024 });
    const { kernel, results } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { kernel: string; results: CaseResult[] };
    assert.equal(results.length, 3);
    for (const r of results) {
      assert.deepEqual(r.kernels, [kernel], `[${r.shape.join(', ')}]: the mask came from ${r.kernels.join(', ') || 'no kernel'}`);
      assert.ok(r.kept > 0 && r.kept < r.size, `[${r.shape.join(', ')}]: ${r.kept} of ${r.size} kept`);
      assert.equal(r.mismatches, 0, `[${r.shape.join(', ')}]: ${r.mismatches} of ${r.size} elements differ`);
    }
  });
});
