// Reading tensor values back to JavaScript: always awaited, and never past a GPU failure.
import * as tf from '@tensorflow/tfjs-core';
import { throwIfGpuFailed } from './gpu-errors';

/**
 * A tensor's values, read without blocking, and the tensor disposed. Every read of values in
 * the engine goes through an await: the webgpu backend has no synchronous read in Node (its
 * readSync draws through an OffscreenCanvas, which Node lacks), and on a GPU an await lets the
 * queue run on. It also throws what the GPU reported meanwhile (kernels/backends/gpu-errors.ts), so that
 * values computed by a failed kernel are never used.
 */
export async function takeValues(t: tf.Tensor): Promise<tf.TypedArray> {
  try {
    return await readValues(t);
  } finally {
    t.dispose();
  }
}

/** As takeValues, for a tensor that lives on (a variable, a weight). */
export async function readValues(t: tf.Tensor): Promise<tf.TypedArray> {
  const values = await t.data();
  throwIfGpuFailed();
  return values;
}

/** The single value of a scalar (or the first of any tensor), read as takeValues reads it. */
export async function takeNumber(t: tf.Tensor): Promise<number> {
  return (await takeValues(t))[0]!;
}

/** max |a − b| over every element of the two tensors `pair` makes (made and freed in a tidy). */
export function maxAbsDifference(pair: () => [tf.Tensor, tf.Tensor]): Promise<number> {
  return takeNumber(
    tf.tidy(() => {
      const [a, b] = pair();
      return tf.max(tf.abs(tf.sub(a, b)));
    }),
  );
}
