import * as tf from '@tensorflow/tfjs-core';

/** Swaps the last two dimensions. */
function swapLast<T extends tf.Tensor>(t: T): T {
  const perm = t.shape.map((_, i) => i);
  [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1]!, perm[t.rank - 2]!];
  return tf.transpose(t, perm) as T;
}

/**
 * tf.matMul(a, b, transposeA, transposeB), for rank ≥ 2. tfjs-backend-wasm (XNNPACK) runs the
 * flagged products 10–50× slower than the plain one (measured 1024², 512 tokens: transposeB
 * 12×, transposeA 50×), while an explicit transpose costs about one plain product of its size.
 * So on wasm the flags become explicit transposes, on whichever side moves fewer elements:
 * op(a)·op(b) with the flagged operands transposed, or (op(b)ᵀ·op(a)ᵀ)ᵀ with the others and
 * the result transposed. Other backends take the flags as they are.
 */
export function matMul<T extends tf.Tensor>(a: T, b: T, transposeA = false, transposeB = false): T {
  if ((!transposeA && !transposeB) || tf.getBackend() !== 'wasm') return tf.matMul(a, b, transposeA, transposeB) as T;
  return tf.tidy(() => {
    const rows = a.shape[a.rank - (transposeA ? 1 : 2)]!;
    const cols = b.shape[b.rank - (transposeB ? 2 : 1)]!;
    const batch = a.shape.slice(0, -2).reduce((n, d) => n * d, 1);
    const direct = (transposeA ? a.size : 0) + (transposeB ? b.size : 0);
    const flipped = (transposeA ? 0 : a.size) + (transposeB ? 0 : b.size) + batch * rows * cols;
    if (direct <= flipped) return tf.matMul(transposeA ? swapLast(a) : a, transposeB ? swapLast(b) : b) as T;
    return swapLast(tf.matMul(transposeB ? b : swapLast(b), transposeA ? a : swapLast(a))) as T;
  });
}
