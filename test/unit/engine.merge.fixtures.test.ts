// The engine on real Hugging Face checkpoints (the reference fixtures): merge, PEFT export, a
// training run through the same entry point as `moslora train` and the trainer process.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { exportPeft, loadAdapter, type AdapterSettings } from '../../server/engine/adapter-files';
import { mergedLogitDifference, mergeIntoModel } from '../../server/engine/merge';
import { runTrainingJob } from '../../server/engine/session';
import { RunDirectory } from '../../server/engine/runs';
import { Checkpoint } from '../../server/formats/checkpoint';
import { writeSafetensors, type TensorToWrite } from '../../server/formats/safetensors';
import { selectModules } from '../../server/models/adapters';
import { CausalLM } from '../../server/models/model';
import { readModelLayout } from '../../server/models/modules';
import type { Adapter } from '../../kernels/adapter/linear';
import { trainedAdapters } from '../helpers/adapters';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'models');
let dir: string;

/** A copy of a fixture stored in F32, so that a merge check measures the merge, not F16 rounding. */
async function asFloat32(name: string): Promise<string> {
  const out = join(dir, `${name}-f32`);
  await cp(join(FIXTURES, name), out, { recursive: true });
  const checkpoint = await Checkpoint.open(join(FIXTURES, name));
  const tensors: TensorToWrite[] = [];
  for (const [tensor, info] of checkpoint.tensors) tensors.push({ name: tensor, dtype: 'F32', shape: info.shape, data: await checkpoint.readFloat32(tensor) });
  await checkpoint.close();
  await writeSafetensors(join(out, 'model.safetensors'), tensors, { format: 'pt' });
  return out;
}

/** A trained-looking MoSLoRA adapter (B away from zero) on every linear module but the head. */
async function adaptersOn(modelDir: string): Promise<Map<string, Adapter>> {
  const { layout } = await readModelLayout(modelDir);
  const targets = layout.linears.map((m) => m.name).filter((name) => !name.endsWith('lm_head'));
  return trainedAdapters(selectModules(layout.linears, targets).selected, { method: 'moslora', r: 4, alpha: 8 }, 7);
}

const settings = (baseModel: string): AdapterSettings => ({
  baseModel, method: 'moslora', r: 4, alpha: 8, dropout: 0, useRslora: false, mixerInit: 'kaiming', chainLength: 2, targetModules: [], fanInFanOut: false,
});

describe('the engine on the reference checkpoints', () => {
  before(async () => {
    await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-engine-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const fixture of ['tiny-llama', 'tiny-gpt2'] as const) {
    it(`${fixture}: the merged model reproduces base + adapter (max |Δlogit| < 1e-4)`, async () => {
      const base = await asFloat32(fixture);
      const adapters = await adaptersOn(base);
      const { layout } = await readModelLayout(base);
      const merged = await mergeIntoModel(base, join(dir, `${fixture}-merged`), adapters, layout.linears);
      assert.equal(merged.mergedModules.length, adapters.size);
      const diff = await mergedLogitDifference(base, merged.outDir, adapters);
      assert.ok(diff < 1e-4, `max |Δlogit| ${diff}`);
      const unchanged = await mergedLogitDifference(base, base, adapters);
      assert.ok(unchanged > 1e-3, `the adapter does change the logits (${unchanged}), so the check can fail`);
    });
  }

  it('the PEFT export (mixer folded in) gives the MoSLoRA model’s logits', async () => {
    const base = join(FIXTURES, 'tiny-llama');
    const native = await adaptersOn(base);
    await exportPeft(join(dir, 'peft'), native, settings(base));
    const plain = await loadAdapter(join(dir, 'peft'));
    assert.equal(plain.settings.method, 'lora');
    const model = await CausalLM.load(base);
    const ids = [[5, 17, 250, 3, 99, 401, 12, 8]];
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(model.forward(ids, { adapters: plain.adapters }), model.forward(ids, { adapters: native })))).dataSync()[0]!);
    model.dispose();
    assert.ok(diff < 1e-5, `PEFT vs native: ${diff}`);
  });

  it('trains on a real checkpoint and tokenizer from a config file, and writes the run', async () => {
    const data = join(dir, 'data');
    await mkdir(data, { recursive: true });
    await writeFile(join(data, 'train.jsonl'), Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `Say ${i}:`, completion: ` ${i} ${i}` })).join('\n'));
    const config = join(dir, 'fixture.moslora.yaml');
    await writeFile(config, [
      `model: ${join(FIXTURES, 'tiny-qwen2')}`, 'method: linchain', 'r: 4', 'alpha: 8', 'target_modules: [q_proj, v_proj, down_proj]',
      'data:', `  train: ${join(data, 'train.jsonl')}`, '  eval_split: 0.25', '  max_length: 24',
      'training:', '  max_steps: 3', '  batch_size: 3', '  gradient_accumulation: 2', '  warmup_steps: 1', '  log_interval: 1', '  eval_interval: 3',
      'output:', `  runs_dir: ${join(dir, 'runs')}`, '  run_name: fixture', 'backend: wasm',
    ].join('\n'));
    const summary = await runTrainingJob(config);
    assert.equal(summary.state, 'done');
    assert.equal(summary.steps, 3);
    assert.ok(Number.isFinite(summary.evalLoss));
    assert.deepEqual((await new RunDirectory(summary.runDir).readMetrics()).filter((m) => m.kind === 'train').map((m) => m.step), [1, 2, 3]);
    assert.deepEqual((await readdir(summary.runDir)).sort(), ['adapter', 'checkpoints', 'config.yaml', 'metrics.jsonl', 'mixers.jsonl', 'peft', 'summary.json']);
    const adapter = await loadAdapter(join(summary.runDir, 'adapter'));
    assert.equal(adapter.adapters.get('model.layers.1.mlp.down_proj')!.weights.mixers.length, 2, 'a linchain of two mixers');
  });

  it('moslora inspect lists the checkpoint’s modules from its headers', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['dist/cli.js', 'inspect', join(FIXTURES, 'tiny-gpt2')]);
    assert.match(stdout, /GPT2LMHeadModel/);
    assert.match(stdout, /transformer\.h\.1\.attn\.c_attn/);
    assert.match(stdout, /parameters: 137\.0K \(136960\)/);
  });
});
