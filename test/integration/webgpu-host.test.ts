// bench webgpu-host measures a step's host time on Dawn's null device, counting what reaches the
// GPU: the counts must be those of the kernels run, and the benchmark must run from the build.
// The null device needs no GPU and no Vulkan driver.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { WebgpuHostResult } from '../../bench/webgpu-host';

const ROOT = join(import.meta.dirname, '..', '..');
const HELPER = join(ROOT, 'test', 'helpers', 'webgpu-traffic.ts');
const BENCH = join(ROOT, 'dist', 'bench.js');
const run = promisify(execFile);

describe("the webgpu host benchmark (Dawn's null device)", () => {
  it('counts dispatches, uploads and readbacks as the kernels make them', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', HELPER], { cwd: ROOT });
    assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1)!), { dispatches: 2, uploads: 2, uploadBytes: 2 * 4096 * 4, readbacks: 1 });
  });

  it('times a training step of the tiny model and records it', { skip: existsSync(BENCH) ? false : 'run `npm run build` first' }, async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'moslora-webgpu-host-'));
    try {
      const { stdout, stderr } = await run(process.execPath, [BENCH, 'webgpu-host', '--model', join(ROOT, 'examples', 'tiny-model'), '--batch', '1', '--tokens', '32', '--steps', '2'], { cwd: scratch });
      const result = JSON.parse(stdout) as WebgpuHostResult;
      assert.equal(result.device, "Dawn's null device");
      // a MoSLoRA step of 4 layers: hundreds of dispatches; the loss and the gradient's norm read back
      assert.ok(result.dispatches_per_step > 300 && result.dispatches_per_step < 2000, String(result.dispatches_per_step));
      assert.equal(result.readbacks_per_step, 2);
      assert.ok(result.step_ms > 0 && result.us_per_dispatch > 0);
      assert.match(stderr, /ms\/step of host time/);
      assert.ok(existsSync(join(scratch, 'bench', 'results', 'webgpu-host.jsonl')));
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
