// 'auto' looks for a WebGPU adapter in a child process: what Dawn and the drivers print goes into
// the reason webgpu was passed over, not onto the user's terminal, and a crashing driver takes
// only the child down.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { probeWebgpu } from '../../server/webgpu-probe';

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const NO_GPU = { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' };

describe('the WebGPU probe', () => {
  it('with no usable driver, gives a reason and leaves stderr alone', { skip: existsSync(CLI) ? false : 'run `npm run build` first' }, async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, 'backends'], { env: NO_GPU });
    assert.match(stdout, /skipped webgpu: Dawn found no GPU adapter/);
    assert.equal(stderr, '', 'Dawn and the drivers print nothing of their own');
  });

  // Locally a missing driver skips this test with the reason; in CI it must run, so it fails.
  const noSwiftShader = existsSync(SWIFTSHADER) || process.env.CI ? false : `no SwiftShader at ${SWIFTSHADER} (apt-get install chromium)`;
  it('finds a software adapter and says so', { skip: noSwiftShader }, async () => {
    const saved = { icd: process.env.VK_ICD_FILENAMES, path: process.env.LD_LIBRARY_PATH };
    Object.assign(process.env, { VK_ICD_FILENAMES: SWIFTSHADER, LD_LIBRARY_PATH: '/usr/lib/chromium' });
    try {
      const found = await probeWebgpu();
      assert.ok('adapter' in found, JSON.stringify(found));
      assert.match(found.adapter.name, /SwiftShader/);
      assert.equal(found.adapter.software, true);
    } finally {
      for (const [key, value] of [['VK_ICD_FILENAMES', saved.icd], ['LD_LIBRARY_PATH', saved.path]] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});
