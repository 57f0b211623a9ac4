// Opening a checkpoint folder (server/formats/checkpoint.ts), one file or shards with an index,
// written here: the union of the shards' tensors, reads from each, and every malformed index or
// shard named with what is wrong.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Checkpoint, INDEX_FILE, SINGLE_FILE } from '../../server/formats/checkpoint';
import { SafetensorsError, writeSafetensors, type WritableDtype } from '../../server/formats/safetensors';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'checkpoint-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes a shard whose tensors hold [start, start + 1, …]. */
async function shard(file: string, tensors: Record<string, number[]>, dtype: WritableDtype = 'F32', start = 1): Promise<void> {
  await writeSafetensors(
    join(dir, file),
    Object.entries(tensors).map(([name, shape]) => {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => start + i);
      return { name, dtype, shape, data };
    }),
  );
}

async function index(weightMap: unknown, metadata: unknown = { total_size: 64 }): Promise<void> {
  await writeFile(join(dir, INDEX_FILE), JSON.stringify({ metadata, weight_map: weightMap }));
}

async function rejectsWith(promise: Promise<unknown>, path: string, ...fragments: string[]): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SafetensorsError, `expected SafetensorsError, got ${String(error)}`);
    assert.ok(error.message.startsWith(`${path}: `), `message does not start with ${path}: ${error.message}`);
    for (const fragment of fragments) assert.ok(error.message.includes(fragment), `"${error.message}" lacks "${fragment}"`);
    return true;
  });
}

const SHARD_1 = 'model-00001-of-00002.safetensors';
const SHARD_2 = 'model-00002-of-00002.safetensors';

describe('Checkpoint.open', () => {
  it('opens a single model.safetensors, with its metadata, and reads through it', async () => {
    await writeSafetensors(
      join(dir, SINGLE_FILE),
      [{ name: 'lm_head.weight', dtype: 'BF16', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }],
      { format: 'pt' },
    );
    const checkpoint = await Checkpoint.open(dir);
    try {
      assert.deepEqual(checkpoint.metadata, { format: 'pt' });
      assert.equal(checkpoint.info('lm_head.weight').file, join(dir, SINGLE_FILE));
      assert.deepEqual(await checkpoint.readFloat32('lm_head.weight'), new Float32Array([1, 2, 3, 4]));
    } finally {
      await checkpoint.close();
    }
  });

  it('opens the shards of an index, gives the union table with each tensor\'s shard, and reads from each', async () => {
    await shard(SHARD_1, { 'model.embed_tokens.weight': [2, 3], 'model.layers.0.mlp.up_proj.weight': [3] }, 'F16');
    await shard(SHARD_2, { 'model.layers.1.mlp.up_proj.weight': [2], 'lm_head.weight': [1] }, 'F32', 10);
    await index({
      'model.embed_tokens.weight': SHARD_1,
      'model.layers.0.mlp.up_proj.weight': SHARD_1,
      'model.layers.1.mlp.up_proj.weight': SHARD_2,
    });
    const checkpoint = await Checkpoint.open(dir);
    try {
      assert.deepEqual(checkpoint.metadata, { total_size: 64 });
      assert.deepEqual(checkpoint.files.map((file) => file.path), [join(dir, SHARD_1), join(dir, SHARD_2)]);
      const table = Object.fromEntries([...checkpoint.tensors].map(([name, info]) => [name, `${info.file.slice(dir.length + 1)} ${info.dtype} [${info.shape}]`]));
      assert.deepEqual(table, {
        'model.embed_tokens.weight': `${SHARD_1} F16 [2,3]`,
        'model.layers.0.mlp.up_proj.weight': `${SHARD_1} F16 [3]`,
        'model.layers.1.mlp.up_proj.weight': `${SHARD_2} F32 [2]`,
        'lm_head.weight': `${SHARD_2} F32 [1]`, // in the shard though not in the index: kept, as transformers loads it
      });
      assert.deepEqual(await checkpoint.readFloat32('model.embed_tokens.weight'), new Float32Array([1, 2, 3, 4, 5, 6]));
      assert.deepEqual(await checkpoint.readFloat32('model.layers.1.mlp.up_proj.weight'), new Float32Array([10, 11]));
    } finally {
      await checkpoint.close();
    }
    await rejectsWith(checkpoint.readFloat32('lm_head.weight'), join(dir, SHARD_2), 'the file has been closed');
  });

  it('prefers model.safetensors to an index, as transformers does', async () => {
    await shard(SINGLE_FILE, { single: [1] });
    await shard(SHARD_1, { sharded: [1] });
    await index({ sharded: SHARD_1 });
    const checkpoint = await Checkpoint.open(dir);
    assert.deepEqual([...checkpoint.tensors.keys()], ['single']);
    await checkpoint.close();
  });

  it('answers an unknown tensor name with the nearest names', async () => {
    await shard(SHARD_1, { 'model.layers.0.self_attn.q_proj.weight': [1], 'model.layers.0.self_attn.k_proj.weight': [1] });
    await shard(SHARD_2, { 'model.layers.0.self_attn.v_proj.weight': [1], 'model.norm.weight': [1] });
    await index({ 'model.layers.0.self_attn.q_proj.weight': SHARD_1, 'model.layers.0.self_attn.v_proj.weight': SHARD_2 });
    const checkpoint = await Checkpoint.open(dir);
    await rejectsWith(
      checkpoint.readFloat32('model.layers.0.self_attn.o_proj.weight'),
      dir,
      'no tensor "model.layers.0.self_attn.o_proj.weight"; nearest names: "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.v_proj.weight"',
    );
    await checkpoint.close();
  });
});

describe('Checkpoint.open errors', () => {
  it('says which files it looked for when the folder has no safetensors, and how to convert a PyTorch checkpoint', async () => {
    await writeFile(join(dir, 'config.json'), '{}');
    await writeFile(join(dir, 'pytorch_model.bin'), 'not read');
    await rejectsWith(
      Checkpoint.open(dir),
      dir,
      `no safetensors weights: looked for ${SINGLE_FILE} and ${INDEX_FILE}, it holds pytorch_model.bin.`,
      'PyTorch checkpoints (.bin, .pt) are not supported',
      `save_pretrained('${dir}-safetensors', safe_serialization=True)`,
    );
    await rm(join(dir, 'pytorch_model.bin'));
    await rejectsWith(Checkpoint.open(dir), dir, 'it holds no weight files');
  });

  it('names a folder that does not exist', async () => {
    const missing = join(dir, 'nowhere');
    await rejectsWith(Checkpoint.open(missing), missing, 'cannot read the model folder: ENOENT');
  });

  const indexPath = () => join(dir, INDEX_FILE);

  it('rejects an index that is not JSON', async () => {
    await writeFile(indexPath(), '{"weight_map": {');
    await rejectsWith(Checkpoint.open(dir), indexPath(), 'the index is not valid JSON');
  });

  it('rejects an index without a weight_map object', async () => {
    await writeFile(indexPath(), JSON.stringify({ metadata: {}, weights: {} }));
    await rejectsWith(Checkpoint.open(dir), indexPath(), 'the index must be an object with a "weight_map" object mapping tensor names to shard files');
  });

  it('rejects an index whose metadata is not an object', async () => {
    await index({ w: SHARD_1 }, 'v1');
    await rejectsWith(Checkpoint.open(dir), indexPath(), '"metadata", when present, must be an object');
  });

  it('rejects an empty weight_map', async () => {
    await index({});
    await rejectsWith(Checkpoint.open(dir), indexPath(), '"weight_map" is empty: the index names no tensors');
  });

  it('rejects a shard named outside the folder or by something other than a file name', async () => {
    await index({ w: '../elsewhere.safetensors' });
    await rejectsWith(Checkpoint.open(dir), indexPath(), '"weight_map" entry "w" must name a shard file in the same folder, got "../elsewhere.safetensors"');
    await index({ w: 3 });
    await rejectsWith(Checkpoint.open(dir), indexPath(), '"weight_map" entry "w" must name a shard file in the same folder, got 3');
  });

  it('names a missing shard, how many tensors it should hold and one of them', async () => {
    await shard(SHARD_1, { a: [1] });
    await index({ a: SHARD_1, b: SHARD_2, c: SHARD_2 });
    await rejectsWith(Checkpoint.open(dir), indexPath(), `shard ${SHARD_2} (holding 2 tensors, e.g. "b") is missing from ${dir}; the download is incomplete`);
  });

  it('names a tensor the index places in a shard that lacks it, and where it really is', async () => {
    await shard(SHARD_1, { a: [1] });
    await shard(SHARD_2, { b: [1], c: [1] });
    await index({ a: SHARD_1, b: SHARD_1, c: SHARD_2 });
    await rejectsWith(Checkpoint.open(dir), indexPath(), `lists tensor "b" in ${SHARD_1}, but ${SHARD_1} has no such tensor (it is in ${SHARD_2})`);
    await index({ a: SHARD_1, b: SHARD_2, c: SHARD_2, ghost: SHARD_2 });
    await rejectsWith(Checkpoint.open(dir), indexPath(), `lists tensor "ghost" in ${SHARD_2}, but ${SHARD_2} has no such tensor`);
  });

  it('rejects a tensor present in two shards', async () => {
    await shard(SHARD_1, { a: [1], shared: [2] });
    await shard(SHARD_2, { b: [1], shared: [2] });
    await index({ a: SHARD_1, b: SHARD_2, shared: SHARD_1 });
    await rejectsWith(Checkpoint.open(dir), indexPath(), `tensor "shared" is in two shards, ${SHARD_1} and ${SHARD_2}`);
  });

  it('passes on a corrupt shard\'s own error, which names the shard', async () => {
    await shard(SHARD_1, { a: [1] });
    await writeFile(join(dir, SHARD_2), Buffer.from([1, 2, 3]));
    await index({ a: SHARD_1, b: SHARD_2 });
    await rejectsWith(Checkpoint.open(dir), join(dir, SHARD_2), 'the file is 3 bytes, too short');
  });
});
