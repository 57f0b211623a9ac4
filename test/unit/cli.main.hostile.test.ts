// Hostile input through the built CLI, one behaviour per test: what a user's odd file or argument
// must get (a one-line refusal with the place and the reason), never a crash or lost data.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initAdapterWeights } from '../../kernels/adapter/init';
import { resolveAdapterSpec } from '../../kernels/adapter/spec';
import { selectBackend } from '../../kernels/backends/backend';
import { saveAdapter } from '../../server/engine/adapter-files';
import { CLI_MISSING, envWithout, runCli, wroteTelemetryLog } from '../helpers/cli';

const TINY_MODEL = join(__dirname, '..', '..', 'examples', 'tiny-model');
let dir: string;

const Q = 'model.layers.0.self_attn.q_proj';

/** A MoSLoRA adapter of the tiny model's first q_proj in `folder`; `poison` puts a NaN into its lora_B. */
async function writeAdapter(folder: string, poison = false): Promise<void> {
  const spec = resolveAdapterSpec({ method: 'moslora', dIn: 128, dOut: 128, r: 2, alpha: 4, bInit: 'kaiming' });
  const weights = initAdapterWeights(spec, 1);
  if (poison) weights.B = tf.tensor2d(weights.B.dataSync().map((v, i) => (i === 5 ? NaN : v)), weights.B.shape);
  await saveAdapter(folder, new Map([[Q, { spec, weights }]]), {
    baseModel: TINY_MODEL, method: 'moslora', r: 2, alpha: 4, dropout: 0, useRslora: false, mixerInit: 'kaiming', chainLength: 2, targetModules: ['q_proj'], fanInFanOut: false,
  });
}

/** Every file under `root`, with its size and modification time, to see that nothing changed. */
async function snapshot(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true });
  return Promise.all(entries.sort().map(async (name) => {
    const info = await stat(join(root, name));
    return `${name} ${info.isDirectory() ? 'dir' : `${info.size} ${info.mtimeMs}`}`;
  }));
}

describe('the CLI on hostile input', { skip: CLI_MISSING }, () => {
  before(async () => {
    await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-hostile-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generate refuses a prompt past the context length with its token count, and onnxruntime leaves no telemetry files', async () => {
    const home = await mkdtemp(join(dir, 'home-'));
    // thousands of words on the command line: onnxruntime's telemetry overflowed the stack on them (exit 139)
    const prompt = 'hello world '.repeat(3400);
    const run = await runCli(['generate', TINY_MODEL, '--prompt', prompt, '--max-new-tokens', '4', '--backend', 'wasm'], { env: envWithout('ORT_DISABLE_TELEMETRY', { HOME: home }) });
    assert.equal(run.signal, null);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^moslora: generate: the prompt is \d{4,} tokens, and .*tiny-model reads at most 256 positions \(its context length, config\.json's max_position_embeddings\); shorten the prompt\n$/);
    assert.equal(wroteTelemetryLog(run), false, 'no /tmp/mat-debug-<pid>.log written by this run');
    assert.deepEqual(await readdir(home), [], 'nothing queued under ~/.cache/Microsoft');
  });

  it('train refuses a bad dataset before loading the model, and a batch no machine holds before loading the weights, leaving no run folder', async () => {
    const project = await mkdtemp(join(dir, 'train-'));
    await writeFile(join(project, 'data.jsonl'), '{"prompt": "a", "completion": "b"}\n{"prompt": "c"}\n');
    const config = (model: string, training: string) =>
      `model: ${model}\ndata:\n  train: data.jsonl\n  format: completion\n  max_length: 4096\ntraining:\n${training}\noutput:\n  runs_dir: runs\nbackend: wasm\n`;
    await writeFile(join(project, 'a.moslora.yaml'), config(join(project, 'no-model-here'), '  max_steps: 1'));
    const data = await runCli(['train', join(project, 'a.moslora.yaml')]);
    assert.equal(data.code, 1);
    assert.match(data.stderr, /^moslora: .*data\.jsonl:2: missing field "completion"/);
    await writeFile(join(project, 'data.jsonl'), '{"prompt": "a", "completion": "b"}\n');
    await writeFile(join(project, 'b.moslora.yaml'), config(TINY_MODEL, '  max_steps: 1\n  batch_size: 1000\n  workers: 1'));
    const batch = await runCli(['train', join(project, 'b.moslora.yaml')]);
    assert.equal(batch.code, 1);
    assert.match(batch.stderr, /^moslora: .*b\.moslora\.yaml: training\.batch_size 1000 × data\.max_length 4096 needs an estimated [\d.]+ GiB even with gradient checkpointing, more than this machine's [\d.]+ GiB of memory; lower training\.batch_size/);
    assert.equal(existsSync(join(project, 'runs')), false);
  });

  it('merge and export refuse an output that is or holds their input; --force replaces only an earlier output', async () => {
    const project = await mkdtemp(join(dir, 'project-'));
    const adapter = join(project, 'runs', 'a', 'adapter');
    await writeAdapter(adapter);
    const before = await snapshot(project);
    const merge = await runCli(['merge', adapter, '--out', '.', '--force', '--backend', 'wasm'], { cwd: project });
    assert.equal(merge.code, 1);
    assert.match(merge.stderr, /^moslora: merge: --out .* holds the adapter .*runs\/a\/adapter, which writing there would destroy; choose a folder outside it\n$/);
    const self = await runCli(['export', adapter, '--out', adapter, '--force'], { cwd: project });
    assert.equal(self.code, 1);
    assert.match(self.stderr, /^moslora: export: --out .*adapter is the adapter .*adapter, which writing there would destroy/);
    assert.deepEqual(await snapshot(project), before, 'nothing in the project changed');
    const mine = join(project, 'mine');
    await mkdir(mine);
    await writeFile(join(mine, 'notes.txt'), 'keep');
    const foreign = await runCli(['export', adapter, '--out', mine, '--force'], { cwd: project });
    assert.match(foreign.stderr, /mine is not a folder moslora wrote \(it has no \.moslora-output\.json\), and --force replaces only those/);
    const out = join(project, 'exported');
    assert.equal((await runCli(['export', adapter, '--out', out])).code, 0);
    assert.match((await runCli(['export', adapter, '--out', out])).stderr, /exported already exists and is not empty; choose another folder or pass --force/);
    const again = await runCli(['export', adapter, '--out', out, '--force']);
    assert.equal(again.code, 0, again.stderr);
  });

  it('generate, merge and export refuse an adapter with non-finite weights, naming the tensor', async () => {
    const adapter = join(dir, 'nan-adapter');
    await writeAdapter(adapter, true);
    const tensor = `tensor "base_model\\.model\\.${Q.replace(/\./g, '\\.')}\\.lora_B\\.weight" holds 1 of 256 values that are not finite \\(the first, NaN, at \\[2, 1\\]\\)`;
    for (const args of [
      ['generate', TINY_MODEL, '--adapter', adapter, '--prompt', 'hi', '--backend', 'wasm'],
      ['merge', adapter, '--out', join(dir, 'nan-merged'), '--backend', 'wasm'],
      ['export', adapter, '--out', join(dir, 'nan-export')],
    ]) {
      const run = await runCli(args);
      assert.equal(run.code, 1, `${args[0]}: ${run.stderr}`);
      assert.match(run.stderr, new RegExp(`^moslora: .*nan-adapter: ${tensor}; the adapter is broken`), args[0]);
      assert.equal(run.stdout, '', `${args[0]} printed nothing`);
    }
    assert.equal(existsSync(join(dir, 'nan-merged')) || existsSync(join(dir, 'nan-export')), false);
  });
});
