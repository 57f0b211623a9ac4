// `moslora export` and `moslora combine` (server/cli/adapters.ts) through the built CLI (`npm run
// build` first), on adapters written here: ΔW kept, ranks added, bad arguments named.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { deltaWeight } from '../../kernels/adapter/merge';
import { loadAdapter, saveAdapter } from '../../server/engine/adapter-files';
import type { BasePrecisionKeys } from '../../server/config/schema';
import { trainedAdapters } from '../helpers/adapters';
import { maxAbsDiff } from '../helpers/tensors';
import type { Adapter } from '../../kernels/adapter/linear';
import type { AdapterMethod } from '../../protocol/methods';

const run = promisify(execFile);
const cli = (...args: string[]) => run(process.execPath, ['dist/cli.js', ...args]);
const Q = 'model.layers.0.self_attn.q_proj';
const V = 'model.layers.0.self_attn.v_proj';
let dir: string;

async function writeAdapter(name: string, method: AdapterMethod, r: number, modules: string[], seed: number, basePrecision?: BasePrecisionKeys): Promise<Map<string, Adapter>> {
  const adapters = trainedAdapters(modules.map((module) => ({ name: module, dIn: 16, dOut: 12 })), { method, r, alpha: 2 * r }, seed);
  await saveAdapter(join(dir, name), adapters, {
    baseModel: 'base', method, r, alpha: 2 * r, dropout: 0, useRslora: false, mixerInit: 'kaiming', chainLength: 2, targetModules: ['q_proj', 'v_proj'], fanInFanOut: false,
    ...(basePrecision ? { basePrecision } : {}),
  });
  return adapters;
}

describe('moslora export and combine (the built CLI)', () => {
  before(async () => {
    await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('export --peft folds the mixer into plain LoRA with the same ΔW', async () => {
    const native = await writeAdapter('native', 'moslora', 4, [Q], 1);
    const { stdout } = await cli('export', join(dir, 'native'), '--peft', '--out', join(dir, 'peft'));
    assert.match(stdout, /exported 1 modules of a moslora adapter as plain LoRA/);
    const peft = await loadAdapter(join(dir, 'peft'));
    assert.equal(peft.settings.method, 'lora');
    const before = native.get(Q)!;
    const after = peft.adapters.get(Q)!;
    assert.ok(maxAbsDiff(deltaWeight(after.spec, after.weights), deltaWeight(before.spec, before.weights)) < 1e-6);
  });

  it('combine --method cat adds ranks per module and records them as PEFT rank_pattern', async () => {
    const a = await writeAdapter('a', 'lora', 4, [Q, V], 10);
    const b = await writeAdapter('b', 'moslora', 2, [Q], 20);
    const { stdout } = await cli('combine', join(dir, 'a'), join(dir, 'b'), '--method', 'cat', '--weights', '0.5,2', '--out', join(dir, 'cat'));
    assert.match(stdout, /combined 2 adapters \(cat\) .*2 modules, rank 6, largest relative error 0\.00e\+0/);
    const config = JSON.parse(await readFile(join(dir, 'cat', 'adapter_config.json'), 'utf8'));
    assert.deepEqual(config.rank_pattern, { [V]: 4 });
    const combined = await loadAdapter(join(dir, 'cat'));
    const q = combined.adapters.get(Q)!;
    assert.equal(q.spec.r, 6);
    const expected = tf.add(tf.mul(deltaWeight(a.get(Q)!.spec, a.get(Q)!.weights), 0.5), tf.mul(deltaWeight(b.get(Q)!.spec, b.get(Q)!.weights), 2));
    assert.ok(maxAbsDiff(deltaWeight(q.spec, q.weights), expected) < 1e-5);
    assert.equal(combined.adapters.get(V)!.spec.r, 4);
  });

  it('combine keeps the stored precision the adapters trained at where they agree, and warns where not', async () => {
    const nf4: BasePrecisionKeys = { torch_dtype: 'float32', load_in_8bit: false, load_in_4bit: true, bnb_4bit_quant_type: 'nf4', quant_group_size: 64 };
    await writeAdapter('nf4-a', 'lora', 2, [Q], 30, nf4);
    await writeAdapter('nf4-b', 'lora', 2, [Q], 31, nf4);
    await writeAdapter('int8', 'lora', 2, [Q], 32, { torch_dtype: 'float32', load_in_8bit: true, load_in_4bit: false });
    await cli('combine', join(dir, 'nf4-a'), join(dir, 'nf4-b'), '--out', join(dir, 'nf4-cat'));
    assert.deepEqual((await loadAdapter(join(dir, 'nf4-cat'))).settings.basePrecision, nf4);
    const { stderr } = await cli('combine', join(dir, 'nf4-a'), join(dir, 'int8'), '--out', join(dir, 'mixed-cat'));
    assert.match(stderr, /warning: the adapters trained on bases of different stored precisions \(.*"load_in_4bit":true.*, .*"load_in_8bit":true.*\); the combined adapter records none/);
    assert.equal((await loadAdapter(join(dir, 'mixed-cat'))).settings.basePrecision, undefined);
  });

  it('says what is wrong with the arguments', async () => {
    await assert.rejects(cli('combine', join(dir, 'a'), join(dir, 'b'), '--weights', '1', '--out', join(dir, 'x')), /--weights has 1 values for 2 adapters/);
    await assert.rejects(cli('combine', join(dir, 'a'), join(dir, 'b'), '--method', 'ties', '--out', join(dir, 'x')), /allowed: cat, linear, svd/);
    await assert.rejects(cli('export', join(dir, 'missing'), '--out', join(dir, 'x')), /missing\/adapter_config\.json: cannot read the adapter config/);
  });
});
