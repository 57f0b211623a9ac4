// Merge, unmerge and fold (kernels/adapter/merge.ts) on trained-looking adapters: the merged layer
// computes what the adapter layer does, unmerge restores W, folding is exact, the chain keeps its
// order, and non-finite results are refused.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { resolveAdapterSpec } from '../../kernels/adapter/spec';
import { selectBackend } from '../../kernels/backends/backend';
import { adaptedLinear, type Adapter, type BaseLinear } from '../../kernels/adapter/linear';
import { deltaWeight, foldToLora, mergeWeight, NonFiniteMergeError, unmergeWeight } from '../../kernels/adapter/merge';
import { trainedAdapter } from '../helpers/adapters';
import { maxAbsDiff, seeded } from '../helpers/tensors';
import { ADAPTER_METHODS, type AdapterMethod } from '../../protocol/methods';

const D = 64;
const R = 8;

// A trained-looking adapter: B and the mixers away from their initial values.
const trained = (method: AdapterMethod, seed: number): Adapter => trainedAdapter(D, D, { method, r: R, alpha: 16, chainLength: 3 }, seed, 0.3);

function base(layout: BaseLinear['layout'], seed: number): BaseLinear {
  return { weight: seeded([D, D], seed, 0.2) as tf.Tensor2D, bias: seeded([D], seed + 1) as tf.Tensor1D, layout };
}

describe('merge, unmerge and fold', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  for (const method of ADAPTER_METHODS) {
    for (const layout of ['out_in', 'in_out'] as const) {
      it(`${method}, ${layout}: the merged layer equals the adapter layer and unmerge restores W`, async () => {
        const adapter = trained(method, 3);
        const layer = base(layout, 7);
        const x = seeded([16, D], 11);
        const merged: BaseLinear = { ...layer, weight: await mergeWeight(layer, adapter.spec, adapter.weights) };
        const diff = maxAbsDiff(adaptedLinear(x, merged, null), adaptedLinear(x, layer, adapter));
        assert.ok(diff < 1e-5, `merged vs adapter: max abs diff ${diff}`);
        assert.ok(maxAbsDiff(merged.weight, layer.weight) > 1e-3, 'the merge changed W');
        const restored = await unmergeWeight(merged, adapter.spec, adapter.weights);
        assert.ok(maxAbsDiff(restored, layer.weight) < 1e-6, 'unmerge restores W');
      });
    }
  }

  it('foldToLora is exact: A′ = M·A with B′ = B reproduces MoSLoRA and linchain outputs', () => {
    for (const method of ['moslora', 'moslora-fixed', 'linchain'] as const) {
      const adapter = trained(method, 13);
      const folded = foldToLora(adapter.weights);
      const lora: Adapter = { spec: resolveAdapterSpec({ ...adapter.spec, method: 'lora' }), weights: { ...folded, mixers: [] } };
      const layer = base('out_in', 17);
      const x = seeded([16, D], 19);
      const diff = maxAbsDiff(adaptedLinear(x, layer, lora), adaptedLinear(x, layer, adapter));
      assert.ok(diff < 1e-5, `${method}: folded vs native max abs diff ${diff}`);
    }
  });

  it('ΔW applies the chain in order M_k···M_1 (mixers do not commute)', () => {
    const adapter = trained('linchain', 23);
    const [m1, m2, m3] = adapter.weights.mixers as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    const expected = tf.mul(tf.matMul(adapter.weights.B, tf.matMul(m3, tf.matMul(m2, tf.matMul(m1, adapter.weights.A)))), 2);
    assert.ok(maxAbsDiff(deltaWeight(adapter.spec, adapter.weights), expected) < 1e-6);
    const reversed = { ...adapter.weights, mixers: [m3, m2, m1] };
    assert.ok(maxAbsDiff(deltaWeight(adapter.spec, reversed), expected) > 1e-3, 'the order matters');
  });

  it('refuses to merge a non-finite adapter and names the module', async () => {
    const adapter = trained('moslora', 29);
    const poisoned = { ...adapter.weights, B: tf.fill([D, R], Number.NaN) as tf.Tensor2D };
    await assert.rejects(
      () => mergeWeight(base('out_in', 31), adapter.spec, poisoned, 'model.layers.0.self_attn.q_proj'),
      (error: unknown) => error instanceof NonFiniteMergeError && /model\.layers\.0\.self_attn\.q_proj: NaN or Inf/.test(error.message),
    );
  });
});
