// DoRA (use_dora) end to end through the built CLI on the shipped tiny Llama: a short MoSLoRA run
// with DoRA lowers the loss, worker threads follow the one-thread curve (their adapters carry the
// magnitudes), and the trained adapter merges into the model and generates.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { SafetensorsFile } from '../../server/formats/safetensors';
import { trainRecords } from '../helpers/run-records';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const EXAMPLES = join(ROOT, 'examples');
const STEPS = 12;

let dir: string;

async function cli(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [CLI, ...args], { maxBuffer: 64 * 1024 * 1024 });
}

/**
 * Trains MoSLoRA with DoRA on the tiny model with `workers` threads for `steps` steps (or
 * continues the run in `resume` to that step); the run folder and its train records.
 */
async function train(workers: number, steps = STEPS, resume?: string) {
  const name = `dora-${workers}-${steps}`;
  const config = join(dir, `${name}.moslora.yaml`);
  await writeFile(config, [
    `model: ${join(EXAMPLES, 'tiny-model')}`, 'method: moslora', 'use_dora: true', 'r: 8', 'alpha: 16', 'dropout: 0.1',
    'target_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]',
    'data:', `  train: ${join(EXAMPLES, 'tiny-task', 'train.jsonl')}`, '  max_length: 32',
    'training:', `  max_steps: ${steps}`, '  batch_size: 5', '  gradient_accumulation: 1', '  learning_rate: 5.0e-3', '  warmup_steps: 0', '  schedule: constant',
    '  seed: 7', `  workers: ${workers}`, '  log_interval: 1', `  eval_interval: ${STEPS}`, `  checkpoint_interval: ${steps}`, `  mixer_interval: ${STEPS}`,
    'output:', `  runs_dir: ${dir}`, `  run_name: ${name}`,
  ].join('\n'));
  await cli(['train', config, '--backend', 'wasm', ...(resume ? ['--resume', resume] : [])]);
  const runDir = resume ?? join(dir, name);
  return { runDir, records: await trainRecords(runDir) };
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

describe('DoRA on the tiny model through the CLI', { skip: existsSync(CLI) ? false : 'dist/cli.js is missing: run `npm run build` first' }, () => {
  let one: Awaited<ReturnType<typeof train>>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-dora-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a short run lowers the loss, counts the magnitudes, and saves them', async () => {
    one = await train(1);
    const losses = one.records.map((r) => r.loss);
    assert.equal(losses.length, STEPS);
    const [first, last] = [mean(losses.slice(0, 3)), mean(losses.slice(-3))];
    assert.ok(last < first - 0.1, `the loss falls: ${first.toFixed(3)} over the first 3 steps, ${last.toFixed(3)} over the last 3`);
    const summary = JSON.parse(await readFile(join(one.runDir, 'summary.json'), 'utf8')) as { useDora: boolean; trainableParameters: number };
    assert.equal(summary.useDora, true);
    // per layer at r = 8: q, o 8·(128+128) and d_out 128; k, v 8·(128+64) and 64; gate, up 8·(128+256) and 256;
    // down 8·(256+128) and 128; a mixer 8² each; 4 layers
    const perLayer = 8 * (256 * 2 + 192 * 2 + 384 * 3) + 7 * 64 + (128 * 2 + 64 * 2 + 256 * 2 + 128);
    assert.equal(summary.trainableParameters, 4 * perLayer);
    const file = await SafetensorsFile.open(join(one.runDir, 'peft', 'adapter_model.safetensors'));
    assert.deepEqual(file.tensors.get('base_model.model.model.layers.0.mlp.gate_proj.lora_magnitude_vector')?.shape, [256]);
    await file.close();
    assert.equal(JSON.parse(await readFile(join(one.runDir, 'peft', 'adapter_config.json'), 'utf8')).use_dora, true);
  });

  it('3 worker threads follow the one-thread curve', async () => {
    const three = await train(3);
    three.records.forEach((r, i) => {
      const reference = one.records[i]!;
      assert.ok(Math.abs(r.loss - reference.loss) / reference.loss < 1e-5, `step ${r.step}: loss ${r.loss} vs ${reference.loss}`);
    });
  });

  it('a run stopped at step 6 and resumed ends where the uninterrupted one does', async () => {
    await train(1, 6);
    const resumed = await train(1, STEPS, join(dir, 'dora-1-6'));
    assert.deepEqual(resumed.records.map((r) => r.step), one.records.map((r) => r.step));
    resumed.records.forEach((r, i) => assert.ok(Math.abs(r.loss - one.records[i]!.loss) / one.records[i]!.loss < 1e-5, `step ${r.step}: ${r.loss} vs ${one.records[i]!.loss}`));
  });

  it('the adapter and its PEFT export merge into the model, which gives the adapted logits; both generate', async () => {
    for (const form of ['adapter', 'peft']) {
      const { stdout } = await cli(['merge', join(one.runDir, form), '--model', join(EXAMPLES, 'tiny-model'), '--out', join(dir, `merged-${form}`), '--json']);
      const merged = JSON.parse(stdout.trim().split('\n').at(-1)!) as { maxAbsLogitDiff: number; mergedModules: number };
      assert.equal(merged.mergedModules, 28);
      assert.ok(merged.maxAbsLogitDiff < 1e-3, `${form}: merged vs base + adapter logits differ by ${merged.maxAbsLogitDiff}`);
    }
    const generated = await Promise.all(
      ['adapter', 'peft'].map(async (form) => {
        const { stdout } = await cli(['generate', join(EXAMPLES, 'tiny-model'), '--adapter', join(one.runDir, form), '--prompt', 'Reverse the words: sea hand day\nReversed:', '--max-new-tokens', '6', '--json']);
        return (JSON.parse(stdout.trim().split('\n').at(-1)!) as { tokenIds: number[] }).tokenIds;
      }),
    );
    assert.deepEqual(generated[0], generated[1]);
    assert.equal(generated[0]!.length > 0, true);
  });
});
