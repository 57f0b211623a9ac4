// Attention (server/models/layers.ts) against transformers' eager attention with repeat_kv: grouped
// K/V heads, the causal mask and the sliding window.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { attention, causalMask } from '../../server/models/layers';
import { maxAbsDiff, seeded } from '../helpers/tensors';

/** transformers' eager attention: repeat_kv copies each K/V head for its group of query heads. */
function referenceAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor2D): tf.Tensor3D {
  const [B, nh, T, hd] = q.shape;
  const group = nh / k.shape[1];
  const repeat = (x: tf.Tensor4D) => tf.concat(tf.unstack(x, 1).flatMap((head) => Array.from({ length: group }, () => tf.expandDims(head, 1))), 1);
  const scores = tf.add(tf.div(tf.matMul(q, repeat(k), false, true), Math.sqrt(hd)), mask);
  const y = tf.matMul(tf.softmax(scores), repeat(v)); // (B, nh, T, hd)
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, nh * hd]);
}

describe('attention', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('groups query heads over shared K/V heads exactly as repeat_kv does', () => {
    tf.tidy(() => {
      const q = seeded([2, 6, 5, 4], 1) as tf.Tensor4D; // 6 query heads
      const k = seeded([2, 2, 7, 4], 2) as tf.Tensor4D; // 2 K/V heads, 2 cached + 5 new tokens
      const v = seeded([2, 2, 7, 4], 3) as tf.Tensor4D;
      const mask = causalMask(5, 2, null);
      assert.ok(maxAbsDiff(attention(q, k, v, mask), referenceAttention(q, k, v, mask)) < 1e-6);
    });
  });

  it('masks the future, and with a sliding window the distant past', () => {
    const visible = (T: number, past: number, window: number | null) =>
      tf.tidy(() => tf.equal(causalMask(T, past, window), 0).arraySync() as unknown as boolean[][]).map((row) => row.map(Number).join(''));
    assert.deepEqual(visible(3, 2, null), ['11100', '11110', '11111']);
    assert.deepEqual(visible(3, 2, 2), ['01100', '00110', '00011']);
  });
});
