import type * as tf from '@tensorflow/tfjs-core';

/**
 * A tensor's values, read without blocking, and the tensor disposed. Every read of values in
 * the engine goes through an await: the webgpu backend has no synchronous read in Node (its
 * readSync draws through an OffscreenCanvas, which Node lacks), and on a GPU an await lets the
 * queue run on.
 */
export async function takeValues(t: tf.Tensor): Promise<tf.TypedArray> {
  try {
    return await t.data();
  } finally {
    t.dispose();
  }
}
