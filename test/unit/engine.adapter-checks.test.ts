// checkFiniteAdapter (server/engine/adapter-checks.ts): an adapter with a NaN or an infinity in any
// factor (A, B, a mixer, DoRA's magnitude) is refused naming the tensor as the file names it, and
// where in it the first such value is.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { checkFiniteAdapter } from '../../server/engine/adapter-checks';
import { trainedAdapter } from '../helpers/adapters';
import type { Adapter } from '../../kernels/adapter/linear';

const MODULE = 'model.layers.0.self_attn.q_proj';

/** A 6 → 5 MoSLoRA adapter of rank 2 with `value` at `index` of one of its factors. */
function poisoned(factor: 'A' | 'B' | 'mixer' | 'magnitude' | null, index: number, value: number): Map<string, Adapter> {
  const adapter = trainedAdapter(6, 5, { method: 'moslora', r: 2, alpha: 4 }, 1);
  const { weights } = adapter;
  const put = (tensor: tf.Tensor) => {
    const values = tensor.dataSync().slice();
    values[index] = value;
    return tf.tensor(values, tensor.shape);
  };
  if (factor === 'A') weights.A = put(weights.A) as tf.Tensor2D;
  if (factor === 'B') weights.B = put(weights.B) as tf.Tensor2D;
  if (factor === 'mixer') weights.mixers = [put(weights.mixers[0]!) as tf.Tensor2D];
  if (factor === 'magnitude') weights.magnitude = put(tf.ones([5])) as tf.Tensor1D;
  return new Map([[MODULE, adapter]]);
}

describe('checkFiniteAdapter', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('passes an adapter whose every value is finite', async () => {
    await checkFiniteAdapter('/a', poisoned(null, 0, 0));
  });

  it('names the tensor, the count and the place of the first non-finite value of each factor', async () => {
    const refusal = (tensor: string, size: number, first: string, at: string) =>
      `/a: tensor "base_model.model.${MODULE}.${tensor}" holds 1 of ${size} values that are not finite (the first, ${first}, at [${at}]); the adapter is broken: train it again, or resume its run from a checkpoint before it diverged`;
    await assert.rejects(checkFiniteAdapter('/a', poisoned('A', 7, NaN)), { message: refusal('lora_A.weight', 12, 'NaN', '1, 1') });
    await assert.rejects(checkFiniteAdapter('/a', poisoned('B', 9, Infinity)), { message: refusal('lora_B.weight', 10, 'Infinity', '4, 1') });
    await assert.rejects(checkFiniteAdapter('/a', poisoned('mixer', 2, -Infinity)), { message: refusal('lora_AB.weight', 4, '-Infinity', '1, 0') });
    await assert.rejects(checkFiniteAdapter('/a', poisoned('magnitude', 3, NaN)), { message: refusal('lora_magnitude_vector', 5, 'NaN', '3') });
  });
});
