// Merge and export after a quantised base, through the built CLI on the shipped tiny Llama: runs
// trained with load_in_4bit (nf4), load_in_8bit and at float32 record their precision, and
// `moslora merge|export --json` and the language server's merge and export requests report what
// it cost, equal to the two forwards run here.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { baseFormats } from '../../server/config/schema';
import { loadAdapter } from '../../server/engine/adapter-files';
import { checkTokenIds, UNRECORDED_PRECISION } from '../../server/engine/merge';
import { CausalLM } from '../../server/models/model';
import { exportAdapterRequest, mergeAdapterRequest } from '../../protocol/editor';
import type { ExportResult, MergeResult, QuantisationCost } from '../../protocol/cli';
import { LspClient, SERVER } from '../helpers/lsp-client';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const EXAMPLES = join(ROOT, 'examples');
const MODEL = join(EXAMPLES, 'tiny-model');

let dir: string;

async function cli(args: string[]): Promise<string> {
  return (await promisify(execFile)(process.execPath, [CLI, ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout;
}

const lastJson = <T>(stdout: string): T => JSON.parse(stdout.trim().split('\n').at(-1)!) as T;

/** Trains MoSLoRA for 3 steps with the precision keys `keys` (YAML lines); the run folder. */
async function train(name: string, keys: string[]): Promise<string> {
  const config = join(dir, `${name}.moslora.yaml`);
  await writeFile(config, [
    `model: ${MODEL}`, 'method: moslora', 'r: 8', 'alpha: 16', ...keys,
    'target_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]',
    'data:', `  train: ${join(EXAMPLES, 'tiny-task', 'train.jsonl')}`, '  max_length: 32',
    'training:', '  max_steps: 3', '  batch_size: 4', '  learning_rate: 5.0e-3', '  warmup_steps: 0', '  seed: 3',
    '  log_interval: 1', '  eval_interval: 3', '  checkpoint_interval: 3', '  mixer_interval: 3',
    'output:', `  runs_dir: ${dir}`, `  run_name: ${name}`,
  ].join('\n'));
  await cli(['train', config, '--backend', 'wasm']);
  return join(dir, name);
}

/** max |Δlogit| on the merge check's batch between the base at the run's precision + its adapter and the float32 base + it, computed here. */
async function costHere(adapterDir: string): Promise<number> {
  const { adapters, settings } = await loadAdapter(adapterDir);
  const logits = async (formats?: ReturnType<typeof baseFormats>) => {
    const model = await CausalLM.load(MODEL, formats ? { formats } : {});
    try {
      return model.forward([checkTokenIds(model.config.vocabSize, model.config.maxPositions)], { adapters });
    } finally {
      model.dispose();
    }
  };
  const [full, low] = [await logits(), await logits(baseFormats(settings.basePrecision!))];
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(full, low))).dataSync()[0]!);
  tf.dispose([full, low]);
  return diff;
}

/** The same figures, to the rounding of two backends (export runs on cpu, merge on wasm). */
function assertSameCost(actual: QuantisationCost, expected: QuantisationCost, what: string): void {
  assert.equal(actual.status, 'measured', `${what}: ${JSON.stringify(actual)}`);
  if (actual.status !== 'measured' || expected.status !== 'measured') return;
  assert.equal(actual.basePrecision, expected.basePrecision);
  for (const key of ['maxAbsLogitDiff', 'meanAbsLogitDiff', 'relativeLogitDiff'] as const) {
    assert.ok(Math.abs(actual[key] - expected[key]) <= 1e-4 * expected[key], `${what} ${key}: ${actual[key]}, expected ${expected[key]}`);
  }
}

describe('merge and export after a quantised base, through the CLI', { skip: existsSync(CLI) && existsSync(SERVER) ? false : 'run `npm run build` first' }, () => {
  before(async () => {
    await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-merge-quant-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const runs = [
    { name: 'nf4', keys: ['load_in_4bit: true', 'bnb_4bit_quant_type: nf4'], record: { torch_dtype: 'float32', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', quant_group_size: 64 }, words: 'nf4 (groups of 64), embedding and lm_head float32' },
    { name: 'int8', keys: ['load_in_8bit: true', 'quant_group_size: 32'], record: { torch_dtype: 'float32', load_in_8bit: true, quant_group_size: 32 }, words: 'int8 (groups of 32), embedding and lm_head float32' },
  ];
  for (const { name, keys, record, words } of runs) {
    it(`${name}: the run records its precision; merge and export report the measured cost, as computed here`, async () => {
      const run = await train(name, keys);
      for (const adapter of ['adapter', join('checkpoints', 'step-3')]) {
        assert.deepEqual(JSON.parse(await readFile(join(run, adapter, 'adapter_config.json'), 'utf8')).moslora.base_precision, record, adapter);
      }
      const merged = lastJson<MergeResult>(await cli(['merge', join(run, 'adapter'), '--out', join(dir, `${name}-merged`), '--backend', 'wasm', '--json']));
      assert.equal(merged.mergedModules, 28);
      assert.ok(merged.maxAbsLogitDiff < 1e-4, `merged vs base + adapter: ${merged.maxAbsLogitDiff}`);
      const cost = merged.quantisation;
      assert.equal(cost.status, 'measured', JSON.stringify(cost));
      if (cost.status !== 'measured') return;
      assert.equal(cost.basePrecision, words);
      const here = await costHere(join(run, 'adapter'));
      assert.ok(here > 0, `the ${name} base changes the logits (${here})`);
      assert.ok(Math.abs(cost.maxAbsLogitDiff - here) <= 1e-5 * here, `reported ${cost.maxAbsLogitDiff}, computed here ${here}`);
      assert.ok(cost.meanAbsLogitDiff > 0 && cost.meanAbsLogitDiff < cost.maxAbsLogitDiff, JSON.stringify(cost));
      assert.ok(cost.relativeLogitDiff > 0 && cost.relativeLogitDiff < 1, JSON.stringify(cost));
      const exported = lastJson<ExportResult>(await cli(['export', join(run, 'adapter'), '--out', join(dir, `${name}-peft`), '--json']));
      assert.equal(exported.modules, 28);
      assertSameCost(exported.quantisation, cost, 'moslora export');
      const text = await cli(['export', join(run, 'adapter'), '--out', join(dir, `${name}-peft`), '--force']);
      const line = text.split('\n').find((l) => l.startsWith('quantisation cost')) ?? text;
      assert.ok(line.startsWith(`quantisation cost, base + adapter at ${words} vs at float32: `), line);
      assert.match(line, /: max \|Δlogit\| \d\.\d\de[-+]\d+ \(\d+\.\d\d% of the largest logit\), mean \|Δlogit\| \d\.\d\de[-+]\d+$/);
      // the run's PEFT export leaves the record out (stock PEFT reads no more), and says so
      const peft = lastJson<ExportResult>(await cli(['export', join(run, 'peft'), '--out', join(dir, `${name}-peft-again`), '--json']));
      assert.deepEqual(peft.quantisation, { status: 'not-quantised', basePrecision: 'float32', reason: UNRECORDED_PRECISION });
      // the language server's requests, as the extension sends them, carry the same report
      const client = await LspClient.start(dir);
      try {
        const viaServer = await client.connection.sendRequest(mergeAdapterRequest, { adapterDir: join(run, 'adapter'), outDir: join(dir, `${name}-merged`), force: true });
        assertSameCost(viaServer.quantisation, cost, 'mergeAdapter');
        const exportedViaServer = await client.connection.sendRequest(exportAdapterRequest, { adapterDir: join(run, 'adapter'), outDir: join(dir, `${name}-peft`), force: true });
        assertSameCost(exportedViaServer.quantisation, cost, 'exportAdapter');
      } finally {
        await client.stop();
      }
    });
  }

  it('a float32 run reports no quantisation cost', async () => {
    const run = await train('float32', []);
    assert.deepEqual(JSON.parse(await readFile(join(run, 'adapter', 'adapter_config.json'), 'utf8')).moslora.base_precision, { torch_dtype: 'float32' });
    const merged = lastJson<MergeResult>(await cli(['merge', join(run, 'adapter'), '--out', join(dir, 'float32-merged'), '--backend', 'wasm', '--json']));
    assert.deepEqual(merged.quantisation, { status: 'not-quantised', basePrecision: 'float32', reason: 'the base was held at float32' });
    const exported = lastJson<ExportResult>(await cli(['export', join(run, 'adapter'), '--out', join(dir, 'float32-peft'), '--json']));
    assert.deepEqual(exported.quantisation, merged.quantisation);
  });
});
