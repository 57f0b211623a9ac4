// Tensor helpers the tests share: the largest difference, seeded random tensors, central finite
// differences and the relative error.
import * as tf from '@tensorflow/tfjs-core';

export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

export function seeded(shape: number[], seed: number, scale = 1): tf.Tensor {
  return tf.randomUniform(shape, -scale, scale, 'float32', seed);
}

/**
 * Central finite differences of a scalar function with respect to every element of `at`,
 * perturbing one element at a time: (f(x + εe_i) − f(x − εe_i)) / 2ε.
 */
export function finiteDifferences(f: (x: tf.Tensor) => tf.Scalar, at: tf.Tensor, eps: number): Float32Array {
  const base = at.dataSync().slice();
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) {
    const shifted = (delta: number) =>
      tf.tidy(() => {
        const values = base.slice();
        values[i]! += delta;
        return f(tf.tensor(values, at.shape)).dataSync()[0]!;
      });
    out[i] = (shifted(eps) - shifted(-eps)) / (2 * eps);
  }
  return out;
}

/** Largest |a − b| over the largest |b|. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}
