// The models' products: tf.matMul, rewritten flag-free on the wasm backend where its products run
// on XNNPACK, and with no gradient for a constant (frozen) operand.
import * as tf from '@tensorflow/tfjs-core';
import { productEngine } from '../backends/mlas-matmul';

/** Swaps the last two dimensions. */
function swapLast<T extends tf.Tensor>(t: T): T {
  const perm = t.shape.map((_, i) => i);
  [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1]!, perm[t.rank - 2]!];
  return tf.transpose(t, perm) as T;
}

/**
 * tf.matMul(a, b, transposeA, transposeB), for rank ≥ 2. tfjs-backend-wasm's XNNPACK runs the
 * flagged products 10–50× slower than the plain one (measured 1024², 512 tokens: transposeB
 * 12×, transposeA 50×), while an explicit transpose costs about one plain product of its size.
 * So on wasm the flags become explicit transposes, on whichever side moves fewer elements:
 * op(a)·op(b) with the flagged operands transposed, or (op(b)ᵀ·op(a)ᵀ)ᵀ with the others and
 * the result transposed, and the gradient is computed the same way. Batched products run as
 * one 2-D product per batch entry: the wasm BatchMatMul kernel reaches 2 GFLOP/s on batched
 * operands (attention's [B·heads, T, hd] products) against 25–30 for the same work as 2-D
 * products, while splitting and stacking cost about one copy of each operand. Other backends,
 * and wasm with MLAS's products, take the flags and the batch as they are.
 */
export function matMul<T extends tf.Tensor>(a: T, b: T, transposeA = false, transposeB = false): T {
  if (!flagFreeApplies(a, b)) return tf.matMul(a, b, transposeA, transposeB) as T;
  // tfjs's own gradient of a product is written with transpose flags, so the backward pass
  // would take the slow path; this one is made of flag-free products too.
  const product = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, y, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([x, y]);
    return {
      value: flagFree(x, y, transposeA, transposeB),
      gradFunc: (dy: tf.Tensor, [sx, sy]: tf.Tensor[]) => [gradientOfA(dy, sy!, transposeA, transposeB), gradientOfB(dy, sx!, transposeA, transposeB)],
    };
  });
  return product(a, b) as T;
}

/**
 * matMul(a, b, …) for a constant b (a frozen weight): the gradient flows to a only. tfjs's own
 * gradient skips an input nothing trainable depends on, but a custom gradient returns one for
 * every input: through matMul, each frozen linear layer also computed its weight's gradient,
 * as large a product as the layer's backward pass (a ~100M step at 1 × 256 on wasm did 138
 * instead of 112 GFLOP of products).
 */
export function matMulByConstant<T extends tf.Tensor>(a: T, b: tf.Tensor, transposeA = false, transposeB = false): T {
  if (!flagFreeApplies(a, b)) return tf.matMul(a, b, transposeA, transposeB) as T;
  const wide = a.rank === 2 && !transposeA && !transposeB && b.shape[1]! >= WIDE_COLUMNS;
  const product = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([]);
    return {
      value: wide ? byColumnBlocks(x as tf.Tensor2D, b as tf.Tensor2D) : flagFree(x, b, transposeA, transposeB),
      gradFunc: (dy: tf.Tensor) => [gradientOfA(dy, b, transposeA, transposeB)],
    };
  });
  return product(a) as T;
}

/** Outputs at least this wide (a vocabulary: lm_head) are computed a block of columns at a time. */
const WIDE_COLUMNS = 8192;

/**
 * x·w for a w of many columns, a block of columns at a time: XNNPACK runs a product whose
 * packed right-hand side is far larger than the caches (lm_head's [768, 32000]: 98 MB) at a
 * third of its rate (10–16 GFLOP/s against 30), while blocks of ~12 MB run at full rate, slicing
 * and packing each block included: [256, 768]·[768, 32000] 1.33 → 0.61 s, 1,024 rows 5.4 → 1.8 s.
 */
function byColumnBlocks(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const [k, n] = w.shape;
  const columns = Math.max(1024, Math.floor((3 * 2 ** 20) / k / 256) * 256);
  const blocks: tf.Tensor2D[] = [];
  for (let start = 0; start < n; start += columns) {
    blocks.push(tf.tidy(() => tf.matMul(x, tf.slice(w, [0, start], [k, Math.min(columns, n - start)]))));
  }
  const y = tf.concat(blocks, 1);
  tf.dispose(blocks);
  return y;
}

/**
 * On wasm with XNNPACK's products, for operands with the same batch dimensions: the flag-free
 * path. MLAS (kernels/backends/mlas-matmul.ts) takes the flags and the batch at full rate, and tfjs's own
 * gradient then skips a frozen weight.
 */
function flagFreeApplies(a: tf.Tensor, b: tf.Tensor): boolean {
  return tf.getBackend() === 'wasm' && productEngine() === 'xnnpack' && a.rank === b.rank && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
}

// C = op(a)·op(b): the four cases of tfjs's BatchMatMul gradient, written out, for each operand.
function gradientOfA(dy: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean): tf.Tensor {
  if (!transposeA) return flagFree(dy, b, false, !transposeB);
  return transposeB ? flagFree(b, dy, true, true) : flagFree(b, dy, false, true);
}

function gradientOfB(dy: tf.Tensor, a: tf.Tensor, transposeA: boolean, transposeB: boolean): tf.Tensor {
  if (!transposeB) return transposeA ? flagFree(a, dy, false, false) : flagFree(a, dy, true, false);
  return transposeA ? flagFree(dy, a, true, true) : flagFree(dy, a, true, false);
}

function flagFree<T extends tf.Tensor>(a: T, b: T, transposeA: boolean, transposeB: boolean): T {
  if (!transposeA && !transposeB) return plainProduct(a, b);
  return tf.tidy(() => {
    const rows = a.shape[a.rank - (transposeA ? 1 : 2)]!;
    const cols = b.shape[b.rank - (transposeB ? 2 : 1)]!;
    const batch = a.shape.slice(0, -2).reduce((n, d) => n * d, 1);
    // Elements moved: the transposes, plus XNNPACK's packing of the right-hand operand, which
    // costs about as much per element as a transpose and is redone for every new tensor.
    const direct = (transposeA ? a.size : 0) + (transposeB ? b.size : 0) + b.size;
    const flipped = (transposeA ? 0 : a.size) + (transposeB ? 0 : b.size) + batch * rows * cols + a.size;
    if (direct <= flipped) return plainProduct(transposeA ? swapLast(a) : a, transposeB ? swapLast(b) : b);
    return swapLast(plainProduct(transposeB ? b : swapLast(b), transposeA ? a : swapLast(a)));
  });
}

/** a·b without flags, for a [..., m, k] and b [..., k, n] with the same batch dimensions. */
function plainProduct<T extends tf.Tensor>(a: T, b: T): T {
  if (a.rank === 2) return tf.matMul(a, b) as T;
  return tf.tidy(() => {
    const batchShape = a.shape.slice(0, -2);
    const [m, k] = a.shape.slice(-2) as [number, number];
    const n = b.shape[b.rank - 1]!;
    const batch = batchShape.reduce((x, d) => x * d, 1);
    const left = tf.unstack(tf.reshape(a, [batch, m, k]));
    const right = tf.unstack(tf.reshape(b, [batch, k, n]));
    return tf.reshape(tf.stack(left.map((x, i) => tf.matMul(x, right[i]!))), [...batchShape, m, n]) as T;
  });
}
