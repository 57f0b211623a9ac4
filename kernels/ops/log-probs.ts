// The log-probability of each row's target token, with a gradient that keeps no [N × V] temporary.
import * as tf from '@tensorflow/tfjs-core';

/** Rows of logits handled at once: about 32 MiB of float32 per [rows × vocab] temporary. */
const CHUNK_ELEMENTS = 1 << 23;

/**
 * log softmax(logits)[n, targets[n]] for logits [N, V] and int32 targets [N] in [0, V): the
 * log-probability of each row's target. Equal to picking from tf.logSoftmax, but with its own
 * gradient, dL/dlogits = dy · (onehot(target) − softmax(logits)), computed a chunk of rows at a
 * time from the logits and the saved log-sum-exp: the backward pass keeps the logits and [N]
 * numbers, not the [N × V] log-softmax, one-hot and product the composite form keeps, and its
 * temporaries are a chunk's size. (It also avoids tf.gather's gradient, which needs
 * UnsortedSegmentSum, a kernel the wasm backend lacks.)
 */
export function targetLogProbs(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [N, V] = logits.shape;
  if (targets.shape[0] !== N) throw new Error(`targetLogProbs: ${targets.shape[0]} targets for ${N} rows of logits`);
  const rows = Math.max(1, Math.floor(CHUNK_ELEMENTS / V));
  const chunks = Array.from({ length: Math.ceil(N / rows) }, (_, i) => ({ start: i * rows, size: Math.min(rows, N - i * rows) }));
  const pick = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const logSumExp = tf.tidy(() => tf.concat(chunks.map(({ start, size }) => tf.logSumExp(tf.slice(x, [start, 0], [size, V]), 1))) as tf.Tensor1D);
    const value = tf.tidy(() => {
      const flat = tf.gather(tf.reshape(x, [-1]), tf.add(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(V, 'int32')), targets)); // x[n, targets[n]]
      return tf.sub(flat, logSumExp) as tf.Tensor1D;
    });
    save([x, targets, logSumExp]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, [sx, st, slse]: tf.Tensor[]) =>
        tf.concat(
          chunks.map(({ start, size }) =>
            tf.tidy(() => {
              const d = tf.reshape(tf.slice(dy, [start], [size]), [size, 1]);
              const probs = tf.exp(tf.sub(tf.slice(sx!, [start, 0], [size, V]), tf.reshape(tf.slice(slse!, [start], [size]), [size, 1])));
              return tf.mul(tf.sub(tf.oneHot(tf.slice(st!, [start], [size]) as tf.Tensor1D, V), probs), d);
            }),
          ),
        ),
    };
  });
  return pick(logits) as tf.Tensor1D;
}
