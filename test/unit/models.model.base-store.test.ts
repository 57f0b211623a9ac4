// The frozen base in the native weight store (server/models/model.ts, kernels/base/): on the
// shipped tiny model, float32 out of the heap trains along the curve of float32 tensors, each
// stored precision trains (finite, falling losses), the same precision held as tensors (webgpu's
// way) gives the store's logits, and workers map the loading thread's matrices.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import type { LoadProgress } from '../../kernels/base/native-load';
import { BASE_PRECISIONS, DEFAULT_GROUP_SIZE, FLOAT32_BASE } from '../../kernels/base/quant';
import type { BackendChoice } from '../../protocol/backends';
import { baseFormats, configSchema } from '../../server/config/schema';
import { CausalLM, type LoadModelOptions } from '../../server/models/model';
import { ModelTokenizer } from '../../server/models/tokenizer';
import { baseStoreTrainLosses, formatsAt } from '../helpers/base-store-runs';
import { maxAbsDiff } from '../helpers/tensors';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');
const MODEL = join(EXAMPLES, 'tiny-model');
const STEPS = 8;

let dir: string;
let backend: BackendChoice;
let tokenizer: ModelTokenizer;

/** Train losses of a short MoSLoRA run of the tiny model loaded with `load`. */
function trainLosses(name: string, load: LoadModelOptions): Promise<number[]> {
  return baseStoreTrainLosses({ dir, backend, tokenizer, name, load, train: join(EXAMPLES, 'tiny-task', 'train.jsonl'), steps: STEPS, batch: 8, learningRate: 3e-3, warmup: 1 });
}

describe('the frozen base in the native weight store', () => {
  before(async () => {
    backend = await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-base-store-'));
    tokenizer = await ModelTokenizer.load(MODEL);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('holds the linear weights and the tied embedding outside the tensors on wasm, at the precision asked for', async () => {
    const before = tf.memory().numBytes;
    const native = await CausalLM.load(MODEL, { formats: formatsAt('nf4') });
    const tensors = await CausalLM.load(MODEL, { store: 'tensors' });
    try {
      // 4 layers of q,k,v,o (128×128, 64×128 ×2, 128×128), gate/up/down (256×128 ×3), and the tied 1024×128 embedding
      const weights = 4 * (2 * 128 * 128 + 2 * 64 * 128 + 3 * 256 * 128) + 1024 * 128;
      assert.equal(native.nativeBytes, weights / 2 + (4 * weights) / DEFAULT_GROUP_SIZE, 'nf4: half a byte a weight and a float32 scale per group');
      assert.equal(tensors.nativeBytes, undefined);
      assert.ok(tf.memory().numBytes - before < 4 * weights + 64 * 1024, 'the native model holds only norms as tensors');
      assert.equal(native.formats.linear.precision, 'nf4');
    } finally {
      native.dispose();
      tensors.dispose();
    }
  });

  it('reports one progress over the whole load when the linears and the embedding are stored at different precisions', async () => {
    const seen: LoadProgress[] = [];
    const formats = { linear: { precision: 'int4' as const, groupSize: DEFAULT_GROUP_SIZE }, embedding: { precision: 'bfloat16' as const, groupSize: DEFAULT_GROUP_SIZE } };
    const model = await CausalLM.load(MODEL, { formats, onProgress: (p) => seen.push(p) });
    model.dispose();
    // 4 layers × 7 linears and the tied embedding: 29 matrices, 4 bytes a float32 weight in the checkpoint
    const bytes = 4 * (4 * (2 * 128 * 128 + 2 * 64 * 128 + 3 * 256 * 128) + 1024 * 128);
    assert.deepEqual(new Set(seen.map((p) => `${p.tensors} ${p.bytesTotal}`)), new Set([`29 ${bytes}`]), 'one total across both groups');
    seen.slice(1).forEach((p, i) => assert.ok(p.done >= seen[i]!.done && p.bytesRead > seen[i]!.bytesRead, `progress ${i + 1} goes back: ${JSON.stringify(p)}`));
    assert.deepEqual([seen.at(-1)!.done, seen.at(-1)!.bytesRead], [29, bytes]);
  });

  it('float32 out of the heap trains along the curve of float32 tensors, to rounding', async () => {
    const heap = await trainLosses('tensors', { store: 'tensors' });
    const native = await trainLosses('native', { store: 'native', formats: FLOAT32_BASE });
    assert.equal(native.length, STEPS);
    native.forEach((loss, i) => assert.ok(Math.abs(loss - heap[i]!) <= 1e-4 * Math.abs(heap[i]!), `step ${i + 1}: ${loss} in the store, ${heap[i]} as tensors`));
    assert.ok(heap[STEPS - 1]! < heap[0]!, `the curve falls: ${heap.join(', ')}`);
  });

  for (const precision of BASE_PRECISIONS.filter((p) => p !== 'float32')) {
    it(`trains with a ${precision} base: losses finite and falling`, async () => {
      const losses = await trainLosses(precision, { formats: formatsAt(precision) });
      assert.equal(losses.length, STEPS);
      assert.ok(losses.every(Number.isFinite), `${precision}: ${losses.join(', ')}`);
      const head = (losses[0]! + losses[1]!) / 2;
      const tail = (losses[STEPS - 2]! + losses[STEPS - 1]!) / 2;
      assert.ok(tail < 0.9 * head, `${precision}: the loss falls by a tenth at least, ${losses.join(', ')}`);
    });
  }

  it('a quantised base held as float32 tensors (webgpu) gives the logits of the native store on this backend', async () => {
    const formats = baseFormats(configSchema.parse({ model: '.', data: { train: '.' }, load_in_4bit: true, torch_dtype: 'bfloat16', quant_group_size: 32 }));
    assert.deepEqual(formats, { linear: { precision: 'nf4', groupSize: 32 }, embedding: { precision: 'bfloat16', groupSize: 32 } });
    const native = await CausalLM.load(MODEL, { formats });
    const tensors = await CausalLM.load(MODEL, { formats, store: 'tensors' });
    const full = await CausalLM.load(MODEL, { store: 'tensors' });
    try {
      const ids = [[5, 17, 300, 2, 900, 41, 7, 1000]];
      const [a, b, c] = [native, tensors, full].map((m) => m.forward(ids));
      assert.ok(maxAbsDiff(a!, b!) < 1e-4, `store and tensors of the same values: ${maxAbsDiff(a!, b!)}`);
      assert.ok(maxAbsDiff(a!, c!) > 1e-3, 'nf4 differs from float32 (the format reaches the products)');
      tf.dispose([a!, b!, c!]);
    } finally {
      for (const m of [native, tensors, full]) m.dispose();
    }
  });

  it('a model made from another thread’s matrices maps them (no copy) and computes alike', async () => {
    const first = await CausalLM.load(MODEL, { formats: formatsAt('int8') });
    const second = await CausalLM.load(MODEL, { formats: formatsAt('int8'), shared: first.sharedWeights() });
    try {
      const parts = first.sharedWeights().get('model.layers.0.mlp.up_proj.weight')!;
      assert.equal(second.sharedWeights().get('model.layers.0.mlp.up_proj.weight')!.codes, parts.codes, 'the same SharedArrayBuffer');
      const [a, b] = [first, second].map((m) => m.forward([[1, 2, 3, 4]]));
      assert.equal(maxAbsDiff(a!, b!), 0);
      tf.dispose([a!, b!]);
    } finally {
      first.dispose();
      second.dispose();
    }
  });
});
