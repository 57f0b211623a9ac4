// DoRA (use_dora) on the webgpu backend, where no GPU is: Dawn on SwiftShader (as
// test/integration/webgpu.test.ts). DoRA runs as tfjs ops on every backend, so training the tiny
// Llama with it through the built CLI on webgpu (checkpointed, so its layers are recomputed) must
// give the curve wasm gives, step by step, and merging the adapter on webgpu the weights wasm writes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { SafetensorsFile } from '../../server/formats/safetensors';
import { trainRecords, type TrainRecord } from '../helpers/run-records';
import { skipWithout, SWIFTSHADER_ENV, swiftshaderMissing } from '../helpers/swiftshader';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const EXAMPLES = join(ROOT, 'examples');
const skip = skipWithout(existsSync(CLI) ? swiftshaderMissing : 'dist/cli.js is missing: run `npm run build` first');

let dir: string;

async function cli(args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, ...args], { env: SWIFTSHADER_ENV, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** Trains 3 steps of MoSLoRA with DoRA on the tiny Llama's projections; the train records. */
async function train(backend: 'wasm' | 'webgpu', checkpointing: boolean): Promise<TrainRecord[]> {
  const config = join(dir, `${backend}.moslora.yaml`);
  await writeFile(config, [
    `model: ${join(EXAMPLES, 'tiny-model')}`, 'method: moslora', 'use_dora: true', 'r: 8', 'alpha: 16', 'dropout: 0.05',
    'target_modules: [q_proj, v_proj, up_proj, down_proj]',
    'data:', `  train: ${join(EXAMPLES, 'tiny-task', 'train.jsonl')}`, '  max_length: 32',
    'training:', '  max_steps: 3', '  batch_size: 4', '  learning_rate: 3.0e-3', '  warmup_steps: 0', '  seed: 42',
    `  gradient_checkpointing: ${checkpointing}`, '  log_interval: 1', '  checkpoint_interval: 3', '  mixer_interval: 3',
    'output:', `  runs_dir: ${dir}`, `  run_name: ${backend}`,
  ].join('\n'));
  await cli(['train', config, '--backend', backend]);
  return trainRecords(join(dir, backend));
}

describe('DoRA on the webgpu backend (software Vulkan)', { skip }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-webgpu-dora-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('training with use_dora on webgpu (checkpointed) follows the wasm curve step by step', async () => {
    const [wasm, webgpu] = [await train('wasm', false), await train('webgpu', true)];
    assert.deepEqual(webgpu.map((r) => r.step), [1, 2, 3]);
    for (const [i, record] of webgpu.entries()) {
      const reference = wasm[i]!;
      assert.ok(Math.abs(record.loss - reference.loss) < 1e-4, `step ${record.step}: loss ${record.loss} on webgpu, ${reference.loss} on wasm`);
      assert.ok(Math.abs(record.grad_norm - reference.grad_norm) < 1e-4 * reference.grad_norm, `step ${record.step}: gradient norm ${record.grad_norm} on webgpu, ${reference.grad_norm} on wasm`);
    }
    assert.notEqual(wasm[0]!.loss, wasm[2]!.loss);
  });

  it('merging the DoRA adapter on webgpu writes the weights wasm writes, and checks them', async () => {
    const merged: Map<string, Float32Array>[] = [];
    for (const backend of ['wasm', 'webgpu']) {
      const out = join(dir, `merged-${backend}`);
      const report = JSON.parse(await cli(['merge', join(dir, 'webgpu', 'adapter'), '--out', out, '--backend', backend, '--json'])) as { mergedModules: number; maxAbsLogitDiff: number };
      assert.equal(report.mergedModules, 16);
      assert.ok(report.maxAbsLogitDiff < 1e-4, `${backend}: merged vs base + adapter ${report.maxAbsLogitDiff}`);
      const file = await SafetensorsFile.open(join(out, 'model.safetensors'));
      try {
        const weights = new Map<string, Float32Array>();
        for (const name of file.tensors.keys()) if (/\.(q|v|up|down)_proj\.weight$/.test(name)) weights.set(name, await file.readFloat32(name));
        merged.push(weights);
      } finally {
        await file.close();
      }
    }
    const [wasm, webgpu] = merged as [Map<string, Float32Array>, Map<string, Float32Array>];
    assert.equal(webgpu.size, 16);
    for (const [name, values] of wasm) {
      const diff = Math.max(...values.map((v, i) => Math.abs(v - webgpu.get(name)![i]!)));
      assert.ok(diff < 1e-5, `${name}: webgpu and wasm merges differ by ${diff}`);
    }
  });
});
