// The training loop (server/engine/train.ts) on a toy model and a next-letter task: metrics, mixer
// snapshots and the files a run writes, determinism, cancel and resume, a NaN loss, checkpointing
// auto, a flat tensor count; and multiple-choice accuracy.
import assert from 'node:assert/strict';
import { existsSync, rmSync, symlinkSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { type BackendChoice } from '../../protocol/backends';
import { resolveConfigPaths, type ResolvedConfig } from '../../server/config/load';
import { configSchema, type ConfigInput } from '../../server/config/schema';
import { loadAdapter } from '../../server/engine/adapter-files';
import { RunDirectory } from '../../server/engine/runs';
import type { DataTokenizer } from '../../server/engine/data';
import type { Scorer } from '../../server/engine/parallel';
import { choiceAccuracy, train } from '../../server/engine/train';
import { IGNORE_INDEX, type LogitsOptions, type TokenBatch } from '../../server/models/model';
import type { Adapter } from '../../kernels/adapter/linear';
import { TOY_VOCAB, ToyModel, toyTokenizer } from '../helpers/toy-model';
import { maxAbsDiff } from '../helpers/tensors';
import { SafetensorsFile } from '../../server/formats/safetensors';
import type { TrainEvent } from '../../protocol/trainer';

let dir: string;
let backend: BackendChoice;

// The task: answer with the next letter of the alphabet.
function rows(count: number, offset: number): string {
  return Array.from({ length: count }, (_, i) => {
    const c = 'abcdefghijklmnopqrstuvwxy'[(i * 7 + offset) % 25]!;
    return JSON.stringify({ prompt: `after ${c}?`, completion: String.fromCharCode(c.charCodeAt(0) + 1) });
  }).join('\n');
}

async function config(name: string, overrides: Partial<ConfigInput> & { training?: Record<string, unknown> } = {}): Promise<ResolvedConfig> {
  const input = {
    model: './toy',
    method: 'moslora',
    r: 4,
    alpha: 8,
    dropout: 0.1,
    target_modules: ['proj', 'head'],
    data: { train: 'train.jsonl', eval: 'eval.jsonl', max_length: 16 },
    ...overrides,
    training: { max_steps: 12, batch_size: 4, gradient_accumulation: 2, learning_rate: 0.02, warmup_steps: 2, log_interval: 1, eval_interval: 6, checkpoint_interval: 4, mixer_interval: 3, seed: 3, ...overrides.training },
    output: { runs_dir: 'runs', run_name: name },
  };
  return resolveConfigPaths(configSchema.parse(input), join(dir, `${name}.moslora.yaml`));
}

async function run(cfg: ResolvedConfig, options: { resume?: boolean; model?: ToyModel; signal?: AbortSignal; onEvent?: (e: TrainEvent) => void } = {}) {
  return train({
    config: cfg,
    model: options.model ?? new ToyModel(TOY_VOCAB, 16),
    tokenizer: toyTokenizer,
    backend,
    runDir: join(dir, 'runs', cfg.output.run_name!),
    resume: options.resume ?? false,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  });
}

const trainLosses = async (name: string) =>
  (await new RunDirectory(join(dir, 'runs', name)).readMetrics()).filter((m) => m.kind === 'train').map((m) => [m.step, m.loss]);

describe('training engine', () => {
  before(async () => {
    backend = await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-train-'));
    await writeFile(join(dir, 'train.jsonl'), rows(40, 0));
    await writeFile(join(dir, 'eval.jsonl'), Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `after ${'bdfhjl'[i]}?`, choices: ['x', String.fromCharCode('bdfhjl'.charCodeAt(i) + 1)], answer: 1 })).join('\n'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('trains, logs train and eval metrics, snapshots mixers from step 0, and writes adapter, peft and summary', async () => {
    const cfg = await config('full');
    const events: TrainEvent[] = [];
    const summary = await run(cfg, { onEvent: (e) => events.push(e) });
    assert.equal(summary.state, 'done');
    assert.equal(summary.steps, 12);
    const metrics = await new RunDirectory(summary.runDir).readMetrics();
    const losses = metrics.filter((m) => m.kind === 'train').map((m) => m.loss as number);
    assert.equal(losses.length, 12);
    assert.ok(losses.at(-1)! < losses[0]!, `the loss falls: ${losses[0]} → ${losses.at(-1)}`);
    const evals = metrics.filter((m) => m.kind === 'eval');
    assert.deepEqual(evals.map((m) => m.step), [6, 12]);
    assert.ok(typeof evals[0]!.accuracy === 'number');
    const mixers = await new RunDirectory(summary.runDir).readMixers();
    assert.deepEqual([...new Set(mixers.map((m) => m.step))], [0, 3, 6, 9, 12]);
    assert.equal(mixers.filter((m) => m.step === 0).length, 2, 'one snapshot per adapted module');
    assert.deepEqual((await readdir(join(summary.runDir, 'checkpoints'))).sort(), ['step-12', 'step-8']);
    const exported = await loadAdapter(join(summary.runDir, 'peft'));
    assert.equal(exported.settings.method, 'lora');
    assert.equal(exported.settings.fanInFanOut, true, 'the [in, out] head sets fan_in_fan_out');
    assert.equal((await loadAdapter(join(summary.runDir, 'adapter'))).adapters.get('model.head')!.weights.mixers.length, 1);
    assert.ok(events.some((e) => e.type === 'metrics') && events.some((e) => e.type === 'mixers'));
    assert.deepEqual(events.filter((e) => e.type === 'state').map((e) => (e as { state: string }).state).at(-1), 'done');
    assert.equal(summary.trainableParameters, 4 * (16 + 16) + 16 + 4 * (16 + TOY_VOCAB) + 16);
  });

  it('is deterministic: the same config and seed give the same loss curve', async () => {
    await run(await config('det-a'));
    await run(await config('det-b'));
    assert.deepEqual(await trainLosses('det-a'), await trainLosses('det-b'));
    await run(await config('det-c', { training: { seed: 4 } }));
    assert.notDeepEqual(await trainLosses('det-a'), await trainLosses('det-c'));
  });

  it('cancel saves a checkpoint; resume reproduces the uninterrupted curve (N + N = 2N)', async () => {
    await run(await config('whole'));
    const controller = new AbortController();
    const cfg = await config('halves');
    const first = await run(cfg, {
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'metrics' && e.record.kind === 'train' && e.record.step === 6) controller.abort();
      },
    });
    assert.equal(first.state, 'cancelled');
    assert.equal(first.steps, 6);
    assert.deepEqual(await new RunDirectory(first.runDir).checkpointSteps(), [4, 6]);
    const second = await run(cfg, { resume: true });
    assert.equal(second.state, 'done');
    assert.deepEqual(await trainLosses('halves'), await trainLosses('whole'));
  });

  it('DoRA: the magnitudes train and are counted; a checkpoint keeps them and their moments, and resume reproduces the uninterrupted curve', async () => {
    const dora = { use_dora: true };
    const model = new ToyModel(TOY_VOCAB, 16);
    const whole = await run(await config('dora-whole', dora), { model });
    assert.equal(whole.state, 'done');
    assert.equal(whole.useDora, true);
    assert.equal(whole.trainableParameters, 4 * (16 + 16) + 16 + 16 + 4 * (16 + TOY_VOCAB) + 16 + TOY_VOCAB);
    const losses = (await trainLosses('dora-whole')).map(([, loss]) => loss!);
    assert.ok(losses.at(-1)! < losses[0]!, `the loss falls: ${losses[0]} → ${losses.at(-1)}`);
    const native = await loadAdapter(join(whole.runDir, 'adapter'));
    assert.equal(native.settings.useDora, true);
    for (const [module, { weights }] of native.adapters) {
      const base = model.base(module);
      const start = tf.norm(base.weight, 'euclidean', base.layout === 'out_in' ? 1 : 0);
      assert.ok(maxAbsDiff(weights.magnitude!, start) > 1e-3, `${module}: m moved from ‖W‖`);
    }
    const exported = await loadAdapter(join(whole.runDir, 'peft'));
    assert.equal(exported.settings.useDora, true);
    assert.equal(maxAbsDiff(exported.adapters.get('model.head')!.weights.magnitude!, native.adapters.get('model.head')!.weights.magnitude!), 0);
    const optimizer = await SafetensorsFile.open(join(whole.runDir, 'checkpoints', 'step-12', 'optimizer.safetensors'));
    assert.ok(optimizer.tensors.has('model.head.lora_magnitude_vector.exp_avg_sq'));
    await optimizer.close();

    const controller = new AbortController();
    const cfg = await config('dora-halves', dora);
    const first = await run(cfg, {
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'metrics' && e.record.kind === 'train' && e.record.step === 6) controller.abort();
      },
    });
    assert.equal(first.state, 'cancelled');
    await run(cfg, { resume: true });
    assert.deepEqual(await trainLosses('dora-halves'), await trainLosses('dora-whole'));
  });

  it('a NaN loss stops the run with a message and keeps the last good checkpoint', async () => {
    const model = new ToyModel(TOY_VOCAB, 16);
    model.poisonAfter = 2 * 5 + 2; // micro-batches of 5 steps, plus the two evaluation passes… of none yet
    const summary = await run(await config('nan', { training: { eval_interval: 100 } }), { model });
    assert.equal(summary.state, 'failed');
    assert.match(summary.reason!, /the loss became NaN at step 7; stopped, the last good checkpoint is kept/);
    assert.deepEqual(await new RunDirectory(summary.runDir).checkpointSteps(), [4]);
    await assert.rejects(readdir(join(summary.runDir, 'adapter')), /ENOENT/);
  });

  it('gradient checkpointing auto: on, and said so, when the run would not fit the wasm heap without it', async () => {
    // The toy computes little, but reports the shape of a ~100M Llama: 3 × 256 tokens of it do not fit.
    class LargeLooking extends ToyModel {
      readonly checkpointFlags: (boolean | undefined)[] = [];
      get shape() {
        return { hidden: 768, layers: 12, heads: 12, vocab: 32_000 };
      }
      override logits(ids: TokenBatch, adapters: ReadonlyMap<string, Adapter>, options: LogitsOptions): tf.Tensor3D {
        if (options.training) this.checkpointFlags.push(options.checkpoint);
        return super.logits(ids, adapters, options);
      }
    }
    const messages: string[] = [];
    const sizes = { training: { max_steps: 2, batch_size: 3, gradient_accumulation: 1, eval_interval: 100 }, data: { train: 'train.jsonl', max_length: 256 } };
    const large = new LargeLooking(TOY_VOCAB, 16);
    await run(await config('auto-on', sizes), { model: large, onEvent: (e) => e.type === 'state' && e.message && messages.push(e.message) });
    assert.deepEqual(large.checkpointFlags, [true, true]);
    assert.ok(messages.some((m) => /^gradient checkpointing on \(training\.gradient_checkpointing: auto\): without it this run needs an estimated \d+\.\d GiB, more than the wasm backend's 4 GiB heap/.test(m)), messages.join('\n'));
    const small = new LargeLooking(TOY_VOCAB, 16);
    await run(await config('auto-off', { ...sizes, training: { ...sizes.training, batch_size: 1 } }), { model: small });
    assert.deepEqual(small.checkpointFlags, [false, false], 'batch 1 fits without it');
  });

  it('keeps the tensor count flat over 200 steps', async () => {
    const counts = new Map<number, number>();
    await run(await config('memory', { training: { max_steps: 200, log_interval: 10, eval_interval: 1000, checkpoint_interval: 1000, mixer_interval: 50, gradient_accumulation: 1 } }), {
      onEvent: (e) => {
        if (e.type === 'metrics') counts.set(e.record.step, tf.memory().numTensors);
      },
    });
    assert.equal(counts.get(200), counts.get(10), `tensors at step 10: ${counts.get(10)}, at 200: ${counts.get(200)}`);
  });

  it('weights that become non-finite fail the run, keep only finite checkpoints and write no adapter', async () => {
    const cfg = await config('decay', { training: { max_steps: 6, eval_interval: 100, checkpoint_interval: 1 } });
    // 1 − lr·decay overflows float32 once warmup has made the learning rate non-zero (step 2):
    // past any bound the schema sets, as the engine must not trust it
    cfg.training.weight_decay = 1e41;
    const summary = await run(cfg);
    assert.equal(summary.state, 'failed');
    assert.match(summary.reason!, /^the adapter's weights became non-finite \(NaN or infinite\) at step 2, in model\.\S+\.lora_\w+; stopped, the last good checkpoint is kept\. Lower training\.learning_rate or training\.weight_decay \(1e\+41\), or set training\.grad_clip$/);
    const folder = new RunDirectory(summary.runDir);
    const latest = await folder.loadLatestCheckpoint();
    assert.ok(latest, 'the steps before the failure left a checkpoint');
    for (const [module, { weights }] of latest.adapters) {
      for (const tensor of [weights.A, weights.B, ...weights.mixers]) assert.ok((await tensor.data()).every(Number.isFinite), `${module} in step ${latest.state.step}`);
    }
    await assert.rejects(readdir(join(summary.runDir, 'adapter')), /ENOENT/);
  });

  it('resuming a done run says so and changes nothing; a larger max_steps trains on and the summary stays right', async () => {
    const cfg = await config('done', { training: { max_steps: 4, eval_interval: 2 } });
    const done = await run(cfg);
    const summaryFile = join(done.runDir, 'summary.json');
    const before = await readFile(summaryFile, 'utf8');
    await assert.rejects(run(cfg, { resume: true }), new RegExp(`done: the run is done \\(4 of 4 steps trained\\); nothing to resume\\. To train it further, raise training\\.max_steps in .*done\\.moslora\\.yaml above 4 and resume again$`));
    assert.equal(await readFile(summaryFile, 'utf8'), before);
    const longer = await run(await config('done', { training: { max_steps: 6, eval_interval: 2 } }), { resume: true });
    assert.equal(longer.state, 'done');
    assert.equal(longer.steps, 6);
    assert.ok(typeof longer.finalLoss === 'number' && typeof longer.evalLoss === 'number' && typeof longer.accuracy === 'number', JSON.stringify(longer));
    const steps = (await new RunDirectory(done.runDir).readMetrics()).filter((m) => m.kind === 'train').map((m) => m.step);
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6]);
  });

  it('a config refused after the data has been read leaves no run folder behind, so the fixed one starts under its name', async () => {
    const cfg = await config('too-wide', { r: 64 });
    await assert.rejects(run(cfg), /too-wide\.moslora\.yaml: r: 64 exceeds min\(d_in, d_out\)/);
    assert.equal(existsSync(join(dir, 'runs', 'too-wide')), false);
    assert.equal((await run(await config('too-wide', { training: { max_steps: 2 } }))).state, 'done');
  });

  it('names the file and the reason when the disk fills up, and keeps the checkpoint', async () => {
    const cfg = await config('full-disk', { training: { max_steps: 8, checkpoint_interval: 2, eval_interval: 100 } });
    const metrics = join(dir, 'runs', 'full-disk', 'metrics.jsonl');
    let swapped = false;
    const failure = run(cfg, {
      onEvent: (e) => {
        // /dev/full answers every write with ENOSPC
        if (!swapped && e.type === 'metrics' && e.record.step === 3) {
          swapped = true;
          rmSync(metrics);
          symlinkSync('/dev/full', metrics);
        }
      },
    });
    await assert.rejects(failure, new RegExp(`full-disk\\.moslora\\.yaml: training stopped after step 4: cannot append to ${metrics.replace(/[.]/g, '\\.')}: the disk is full \\(ENOSPC\\)\\. The checkpoint of step 2 is kept in `));
  });

  it('refuses target_modules that match nothing, naming them', async () => {
    await assert.rejects(run(await config('typo', { target_modules: ['proj', 'q_porj'] })), /target_modules "q_porj" match no linear module/);
  });

  it('takes target_modules as a regular expression, and saves the modules it selected for PEFT', async () => {
    const summary = await run(await config('pattern', { target_modules: '.*\\.layers\\.\\d+\\.proj', training: { max_steps: 2 } }));
    assert.equal(summary.state, 'done');
    const saved = JSON.parse(await readFile(join(summary.runDir, 'peft', 'adapter_config.json'), 'utf8')) as { target_modules: string[] };
    assert.deepEqual(saved.target_modules, ['model.layers.0.proj']);
    assert.deepEqual([...(await loadAdapter(join(summary.runDir, 'adapter'))).adapters.keys()], ['model.layers.0.proj']);
  });
});

describe('multiple-choice accuracy', () => {
  // One token per character code; a choice scores the sum of its labelled tokens, so the choice
  // with the largest character codes wins.
  const tokenizer: DataTokenizer = {
    encode: (text) => [...text].map((c) => c.charCodeAt(0)),
    bosTokenId: 1,
    eosTokenId: 2,
    padTokenId: 0,
    applyChatTemplate: () => {
      throw new Error('no template');
    },
  };

  it('scores whole examples a batch at a time and credits each its own best choice', async () => {
    const batches: number[] = [];
    const score: Scorer = async ({ labels }) => {
      batches.push(labels.length);
      return labels.map((row) => row.filter((l) => l !== IGNORE_INDEX).reduce((a, b) => a + b, 0));
    };
    const examples = [
      { prompt: 'q1', choices: ['a', 'z', 'b'], answer: 1 }, // right: z is largest
      { prompt: 'q2', choices: ['y', 'c'], answer: 1 }, // wrong: y beats c
      { prompt: 'q3', choices: ['d', 'e', 'x', 'f'], answer: 2 }, // right
      { prompt: 'q4', choices: ['g', 'w'], answer: 1 }, // right
    ];
    assert.equal(await choiceAccuracy(score, examples, tokenizer, 16, 5), 3 / 4);
    assert.deepEqual(batches, [5, 4, 2], 'whole examples, at most 5 rows a batch');
    batches.length = 0;
    assert.equal(await choiceAccuracy(score, examples, tokenizer, 16, 2), 3 / 4);
    assert.deepEqual(batches, [3, 2, 4, 2], 'an example larger than a batch is scored alone');
  });
});
