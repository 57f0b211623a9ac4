// The frozen base on the GPU at its stored precision (server/models/model.ts, store 'gpu': the
// linear layers' products and the embedding's gather on kernels/base/webgpu-quant.ts) where no
// GPU is (Dawn on SwiftShader): the shipped tiny model trains at every precision (finite, falling
// losses); float32 on the GPU follows the curve of float32 tensors to rounding; int8 and nf4 give
// the logits of the wasm native store at the same precision (the same dequantised values, summed
// in another order); the model holds no float32 copy of its matrices, and dispose frees the GPU's.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { selectBackend } from '../../kernels/backends/backend';
import { BASE_PRECISIONS, DEFAULT_GROUP_SIZE } from '../../kernels/base/quant';
import { CausalLM } from '../../server/models/model';
import { runOnSwiftshader, skipWithout, swiftshaderMissing } from '../helpers/swiftshader';
import type * as WebgpuBase from '../helpers/webgpu-base';

const HELPER = join(import.meta.dirname, '..', 'helpers', 'webgpu-base.ts');
const skip = skipWithout(swiftshaderMissing);
const STEPS = 4;
const COMPARED = ['int8', 'nf4'] as const;
// float16 is stored as bfloat16 is (16-bit codes); its dequantisation is tested in webgpu-quant.test.ts
const TRAINED = BASE_PRECISIONS.filter((p) => p !== 'float16');

describe('the frozen base on the GPU (webgpu on a software Vulkan driver)', { skip }, () => {
  let result: WebgpuBase.Result;
  before(async () => {
    const args: WebgpuBase.Args = { steps: STEPS, precisions: TRAINED, logits: [...COMPARED] };
    result = await runOnSwiftshader<WebgpuBase.Result>(HELPER, [JSON.stringify(args)]);
  });

  it('is where webgpu keeps a base below float32, and a forward runs its products and gather there', () => {
    assert.deepEqual(result.store, { quantised: 'gpu', float32: 'tensors' }, "an all-float32 base stays tensors, for tfjs's own product");
    // 4 layers × 7 projections and the tied lm_head, once each; the embedding's gather once
    assert.equal(result.kernels.products, 4 * 7 + 1);
    assert.equal(result.kernels.gathers, 1);
  });

  it('holds the matrices packed (no float32 copy) and dispose gives the GPU its buffers back', () => {
    // 4 layers of q,k,v,o (128×128, 64×128 ×2, 128×128), gate/up/down (256×128 ×3), and the tied 1024×128 embedding
    const weights = 4 * (2 * 128 * 128 + 2 * 64 * 128 + 3 * 256 * 128) + 1024 * 128;
    assert.equal(result.memory.gpuBytes, weights / 2 + (4 * weights) / DEFAULT_GROUP_SIZE, 'nf4: half a byte a weight and a float32 scale per group');
    // besides the packed matrices: the norms' float32 vectors (9 of 128)
    assert.equal(result.memory.tensorBytes - result.memory.gpuBytes!, 4 * 9 * 128);
    assert.equal(result.memory.leftAfterDispose, 0);
  });

  it('float32 on the GPU follows the curve of float32 tensors, to rounding', () => {
    const [tensors, gpu] = [result.losses['tensors']!, result.losses['float32']!];
    assert.equal(gpu.length, STEPS);
    gpu.forEach((loss, i) => assert.ok(Math.abs(loss - tensors[i]!) <= 1e-4 * Math.abs(tensors[i]!), `step ${i + 1}: ${loss} on the GPU, ${tensors[i]} as tensors`));
  });

  for (const precision of TRAINED) {
    it(`trains with a ${precision} base on the GPU: losses finite and falling`, () => {
      const losses = result.losses[precision]!;
      console.log(`${precision}: ${losses.map((l) => l.toFixed(4)).join(', ')}`);
      assert.equal(losses.length, STEPS);
      assert.ok(losses.every(Number.isFinite), `${precision}: ${losses.join(', ')}`);
      // every step trains on the same batch: each loss below the last
      losses.slice(1).forEach((loss, i) => assert.ok(loss < losses[i]!, `${precision}: step ${i + 2} does not lower the loss, ${losses.join(', ')}`));
    });
  }

  it('int8 and nf4 on the GPU give the logits of the wasm native store at the same precision', async () => {
    await selectBackend('wasm');
    const logits = new Map<string, Float32Array>();
    for (const precision of COMPARED) {
      const format = { precision, groupSize: DEFAULT_GROUP_SIZE };
      const model = await CausalLM.load(result.model, { store: 'native', formats: { linear: format, embedding: format } });
      try {
        const y = model.forward(result.ids);
        logits.set(precision, (await y.data()) as Float32Array);
        y.dispose();
      } finally {
        model.dispose();
      }
      const gpu = result.logits[precision]!;
      const native = logits.get(precision)!;
      assert.equal(gpu.length, native.length);
      const diff = Math.max(...gpu.map((v, i) => Math.abs(v - native[i]!)));
      console.log(`${precision}: logits on the GPU and in the native store differ by ${diff.toExponential(1)} at most`);
      assert.ok(diff < 1e-4, `${precision}: the GPU's logits differ from the native store's by ${diff}`);
    }
    // the precision reaches the products: int8 and nf4 differ
    const diff = Math.max(...result.logits['int8']!.map((v, i) => Math.abs(v - result.logits['nf4']![i]!)));
    assert.ok(diff > 1e-3, `int8 and nf4 give the same logits (${diff})`);
  });

  it("gives DoRA's row norms of an nf4 weight as the native store does", async () => {
    await selectBackend('wasm');
    const format = { precision: 'nf4' as const, groupSize: DEFAULT_GROUP_SIZE };
    const model = await CausalLM.load(result.model, { store: 'native', formats: { linear: format, embedding: format } });
    try {
      const native = await model.base(result.norms.module).weightNormsSquared!.data();
      assert.equal(result.norms.values.length, native.length);
      result.norms.values.forEach((v, i) => assert.ok(Math.abs(v - native[i]!) <= 1e-5 * native[i]!, `row ${i}: ${v} on the GPU, ${native[i]} in the store`));
    } finally {
      model.dispose();
    }
  });

  it('refuses ids it cannot check on the host, and an id past the vocabulary', () => {
    assert.match(result.refusals.tensor, /^input_ids: the embedding table is on the GPU, whose gather checks the ids on the host/);
    assert.match(result.refusals.outOfRange, /^input_ids\[0\]\[1\] = 1024 is not a token id in \[0, 1024\)/);
  });
});
