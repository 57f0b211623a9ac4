// The webgpu backend, run where no GPU is: Dawn on SwiftShader, the software Vulkan driver that
// Debian's Chromium ships. It runs the same WGSL shaders a GPU would, so training through the
// built CLI on webgpu must give the curve wasm gives with the same seed, step by step; and
// 'auto' must not take a software adapter. Slow (SwiftShader compiles every shader on the CPU):
// about a minute.
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
const missing = existsSync(CLI) ? swiftshaderMissing : 'dist/cli.js is missing: run `npm run build` first';
const skip = skipWithout(missing);

async function cli(args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, ...args], { env: SWIFTSHADER_ENV, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

let dir: string;

/** A model and the modules to adapt: the shipped tiny Llama (every projection), or the tiny GPT-2 fixture (its LayerNorm and gelu_new kernels). */
const MODELS = {
  llama: { folder: join(EXAMPLES, 'tiny-model'), targets: '[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]', maxLength: 32 },
  // its 512-token vocabulary takes more tokens for the task's prompts
  gpt2: { folder: join(ROOT, 'test', 'fixtures', 'models', 'tiny-gpt2'), targets: '[c_attn, c_proj, c_fc]', maxLength: 64 },
};

/** Trains 3 steps of MoSLoRA on the model's modules; the train records. */
async function train(backend: 'wasm' | 'webgpu', checkpointing: boolean, model: keyof typeof MODELS = 'llama'): Promise<TrainRecord[]> {
  const name = model === 'llama' ? backend : `${model}-${backend}`;
  const config = join(dir, `${name}.moslora.yaml`);
  await writeFile(config, [
    `model: ${MODELS[model].folder}`, 'method: moslora', 'r: 8', 'alpha: 16', 'dropout: 0.05',
    `target_modules: ${MODELS[model].targets}`,
    'data:', `  train: ${join(EXAMPLES, 'tiny-task', 'train.jsonl')}`, `  max_length: ${MODELS[model].maxLength}`,
    'training:', '  max_steps: 3', '  batch_size: 4', '  learning_rate: 3.0e-3', '  warmup_steps: 0', '  seed: 42',
    `  gradient_checkpointing: ${checkpointing}`, '  log_interval: 1', '  checkpoint_interval: 3', '  mixer_interval: 3',
    'output:', `  runs_dir: ${dir}`, `  run_name: ${name}`,
  ].join('\n'));
  await cli(['train', config, '--backend', backend]);
  return trainRecords(join(dir, name));
}

/** The webgpu curve equals wasm's step by step: losses and gradient norms. */
function assertSameCurve(webgpu: TrainRecord[], wasm: TrainRecord[]): void {
  assert.deepEqual(webgpu.map((r) => r.step), [1, 2, 3]);
  assert.deepEqual(wasm.map((r) => r.step), [1, 2, 3]);
  for (const [i, record] of webgpu.entries()) {
    const reference = wasm[i]!;
    assert.ok(Math.abs(record.loss - reference.loss) < 1e-4, `step ${record.step}: loss ${record.loss} on webgpu, ${reference.loss} on wasm`);
    assert.ok(
      Math.abs(record.grad_norm - reference.grad_norm) < 1e-4 * reference.grad_norm,
      `step ${record.step}: gradient norm ${record.grad_norm} on webgpu, ${reference.grad_norm} on wasm`,
    );
  }
  // the steps changed the adapter: the curve is not flat
  assert.notEqual(wasm[0]!.loss, wasm[2]!.loss);
}

describe('webgpu backend on a software Vulkan driver', { skip }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-webgpu-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("'auto' passes over the software adapter with its reason; named, it is taken", async () => {
    const report = JSON.parse(await cli(['backends', '--json'])) as { auto: { backend: string; skipped: { backend: string; reason: string }[] } };
    assert.equal(report.auto.backend, 'wasm');
    const webgpu = report.auto.skipped.find((s) => s.backend === 'webgpu');
    assert.match(webgpu?.reason ?? '', /SwiftShader.*software one that runs on the CPU, slower there than wasm/);
  });

  it('training on webgpu (checkpointed) follows the wasm curve step by step, same seed and dropout', async () => {
    const [wasm, webgpu] = [await train('wasm', false), await train('webgpu', true)];
    assertSameCurve(webgpu, wasm);
  });

  it('training GPT-2 on webgpu (LayerNorm and gelu_new on their kernels) follows the wasm curve', async () => {
    const [wasm, webgpu] = [await train('wasm', false, 'gpt2'), await train('webgpu', true, 'gpt2')];
    assertSameCurve(webgpu, wasm);
  });

  it('a kernel the GPU refuses makes the next read throw what it said, instead of returning garbage', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'gpu-error-probe.ts')], { env: SWIFTSHADER_ENV, cwd: ROOT });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { device: string; gpuError?: string; values?: number[] };
    assert.match(result.device, /software, on the CPU/);
    assert.equal(result.values, undefined, `the read returned ${JSON.stringify(result.values)}`);
    assert.match(result.gpuError ?? '', /^the GPU reported .*storage buffers \(13\).*exceeds the maximum per-stage limit/);
  });

  it('merging the trained adapter on webgpu writes the weights wasm writes, and checks them', async () => {
    const merged: Map<string, Float32Array>[] = [];
    for (const backend of ['wasm', 'webgpu']) {
      const out = join(dir, `merged-${backend}`);
      const report = JSON.parse(await cli(['merge', join(dir, 'webgpu', 'adapter'), '--out', out, '--backend', backend, '--json'])) as { mergedModules: number; maxAbsLogitDiff: number };
      assert.equal(report.mergedModules, 28);
      assert.ok(report.maxAbsLogitDiff < 1e-4, `${backend}: merged vs base + adapter ${report.maxAbsLogitDiff}`);
      const file = await SafetensorsFile.open(join(out, 'model.safetensors'));
      try {
        const weights = new Map<string, Float32Array>();
        for (const name of file.tensors.keys()) if (/\.(q|k|v|o|gate|up|down)_proj\.weight$/.test(name)) weights.set(name, await file.readFloat32(name));
        merged.push(weights);
      } finally {
        await file.close();
      }
    }
    const [wasm, webgpu] = merged as [Map<string, Float32Array>, Map<string, Float32Array>];
    assert.equal(webgpu.size, 28);
    for (const [name, values] of wasm) {
      const other = webgpu.get(name)!;
      const diff = Math.max(...values.map((v, i) => Math.abs(v - other[i]!)));
      assert.ok(diff < 1e-5, `${name}: webgpu and wasm merges differ by ${diff}`);
    }
  });

  it('generating with the trained adapter on webgpu gives the tokens wasm gives', async () => {
    const generate = async (backend: string) =>
      (JSON.parse(
        await cli(['generate', join(EXAMPLES, 'tiny-model'), '--adapter', join(dir, 'webgpu', 'adapter'), '--prompt', 'Reverse the words: red fish blue\nReversed:', '--max-new-tokens', '6', '--json', '--backend', backend]),
      ) as { tokenIds: number[] }).tokenIds;
    const [wasm, webgpu] = [await generate('wasm'), await generate('webgpu')];
    assert.equal(wasm.length, 6);
    assert.deepEqual(webgpu, wasm);
  });
});
