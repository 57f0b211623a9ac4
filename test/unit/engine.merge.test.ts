// Merging an adapter into a base checkpoint (server/engine/merge.ts) on a two-shard folder, one F32
// and one BF16: W + s·B·M·A in the adapted modules only, the rest copied, and the folders and
// adapters it refuses.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { mergeWeight } from '../../kernels/adapter/merge';
import { mergeIntoModel } from '../../server/engine/merge';
import { SafetensorsFile, writeSafetensors } from '../../server/formats/safetensors';
import type { LinearModule } from '../../server/models/modules';
import { trainedAdapters } from '../helpers/adapters';
import { linearModule } from '../helpers/modules';
import type { Adapter } from '../../kernels/adapter/linear';

const Q = 'model.layers.0.self_attn.q_proj';
const C = 'transformer.h.0.attn.c_attn';
const modules: LinearModule[] = [
  linearModule(Q, 8, 6, 'out_in'),
  linearModule(C, 8, 12, 'in_out'),
];

let dir: string;
let base: string;
const values = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) / 4);

const adapters = (): Map<string, Adapter> => trainedAdapters(modules, { method: 'moslora', r: 2, alpha: 4 }, 1);

describe('merging into the base model', () => {
  before(async () => {
    await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-merge-'));
    base = join(dir, 'base');
    await mkdir(base);
    // Two shards, one F32 and one BF16, with an index, as a sharded Hugging Face folder.
    await writeSafetensors(join(base, 'model-00001-of-00002.safetensors'), [
      { name: `${Q}.weight`, dtype: 'F32', shape: [6, 8], data: values(48, 1) },
      { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [5, 8], data: values(40, 2) },
    ], { format: 'pt' });
    await writeSafetensors(join(base, 'model-00002-of-00002.safetensors'), [
      { name: `${C}.weight`, dtype: 'BF16', shape: [8, 12], data: values(96, 3) },
    ], { format: 'pt' });
    const weightMap = { [`${Q}.weight`]: 'model-00001-of-00002.safetensors', 'model.embed_tokens.weight': 'model-00001-of-00002.safetensors', [`${C}.weight`]: 'model-00002-of-00002.safetensors' };
    await writeFile(join(base, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    await writeFile(join(base, 'config.json'), '{"architectures": ["LlamaForCausalLM"]}');
    await writeFile(join(base, 'tokenizer.json'), '{}');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the same shards, names and dtypes, with W + s·B·M·A in the adapted modules only', async () => {
    const out = join(dir, 'merged');
    const progress: number[] = [];
    const result = await mergeIntoModel(base, out, adapters(), modules, { onProgress: (p) => progress.push(p.shardIndex) });
    assert.deepEqual(result.mergedModules.sort(), [Q, C].sort());
    assert.deepEqual(progress, [1, 2]);
    assert.deepEqual((await readdir(out)).sort(), ['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json', 'tokenizer.json']);
    const shard1 = await SafetensorsFile.open(join(out, 'model-00001-of-00002.safetensors'));
    const shard2 = await SafetensorsFile.open(join(out, 'model-00002-of-00002.safetensors'));
    try {
      assert.equal(shard2.tensors.get(`${C}.weight`)!.dtype, 'BF16', 'the dtype is kept');
      assert.deepEqual(await shard1.readFloat32('model.embed_tokens.weight'), values(40, 2), 'untouched tensors are copied exactly');
      const a = adapters();
      const expectedQ = (await mergeWeight({ weight: tf.tensor2d(values(48, 1), [6, 8]), layout: 'out_in' }, a.get(Q)!.spec, a.get(Q)!.weights)).dataSync();
      const gotQ = await shard1.readFloat32(`${Q}.weight`);
      assert.ok(gotQ.every((v, i) => Math.abs(v - expectedQ[i]!) < 1e-7));
      assert.ok(gotQ.some((v, i) => Math.abs(v - values(48, 1)[i]!) > 1e-3), 'the weight changed');
      const bf16Base = await (await SafetensorsFile.open(join(base, 'model-00002-of-00002.safetensors'))).readFloat32(`${C}.weight`);
      const expectedC = (await mergeWeight({ weight: tf.tensor2d(bf16Base, [8, 12]), layout: 'in_out' }, a.get(C)!.spec, a.get(C)!.weights)).dataSync();
      const gotC = await shard2.readFloat32(`${C}.weight`);
      assert.ok(gotC.every((v, i) => Math.abs(v - expectedC[i]!) <= Math.abs(expectedC[i]!) * 2 ** -8), 'within bf16 rounding of the float32 merge');
    } finally {
      await shard1.close();
      await shard2.close();
    }
    assert.equal(await readFile(join(out, 'config.json'), 'utf8'), '{"architectures": ["LlamaForCausalLM"]}');
  });

  it('never overwrites an existing folder unless asked, nor the base itself', async () => {
    const out = join(dir, 'taken');
    await mkdir(out);
    await writeFile(join(out, 'precious.txt'), 'keep me');
    await assert.rejects(mergeIntoModel(base, out, adapters(), modules), /taken already exists and is not empty; choose another folder or pass --force/);
    assert.equal(await readFile(join(out, 'precious.txt'), 'utf8'), 'keep me');
    await assert.rejects(mergeIntoModel(base, base, adapters(), modules), /must differ from the base model folder/);
  });

  it('refuses an adapter of another model, naming the module', async () => {
    const foreign = new Map([['model.layers.9.mlp.up_proj', adapters().get(Q)!]]);
    await assert.rejects(mergeIntoModel(base, join(dir, 'x'), foreign, modules), /module "model\.layers\.9\.mlp\.up_proj", which the base model .* does not have/);
  });
});
