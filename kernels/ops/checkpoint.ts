// Gradient checkpointing: a function whose backward pass recomputes its inside instead of
// keeping it.
import * as tf from '@tensorflow/tfjs-core';

/**
 * f(x, ...context), computed so that the backward pass keeps only x and the context instead of
 * every tensor f makes: the forward runs off the tape, and the gradient recomputes f on a tape
 * of its own (gradient checkpointing, as torch.utils.checkpoint). f must read every tensor it
 * was not given from `weights` or from tensors that outlive the backward pass (a model's frozen
 * weights): the context is passed again, as kept copies, because the caller's own tensors may
 * be disposed by then. `weights` are the trainable tensors f reads: their gradients flow out of
 * the recomputation. f must be deterministic (seeded dropout is), or the recomputed activations
 * would not be the ones the loss saw. Gradients flow to x and the weights, not the context.
 */
export function checkpointed<T extends tf.Tensor>(f: (x: T, context: tf.Tensor[]) => T, x: T, context: readonly tf.Tensor[], weights: readonly tf.Tensor[]): T {
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const input = args[0] as T;
    save([input, ...context]);
    return {
      value: tf.tidy(() => f(input, [...context])),
      gradFunc: (dy: tf.Tensor, [savedInput, ...savedContext]: tf.Tensor[]) => {
        // The recomputation records a tape of its own while the outer backward pass still walks
        // the outer one. tfjs keeps one tape in its engine state: a gradient started at depth 0
        // replaces it and, when done, disposes its own saved tensors and clears it, so the outer
        // tape is put back afterwards. (Started at depth > 0 instead, it would append to the
        // outer tape, and every layer's recomputed activations would live until the end.)
        const state = tf.engine().state;
        const outer = state.activeTape;
        try {
          const [dx, ...dWeights] = tf.grads((...xs: tf.Tensor[]) => f(xs[0] as T, savedContext))([savedInput!, ...weights], dy);
          return [dx!, ...dWeights];
        } finally {
          state.activeTape = outer;
        }
      },
    };
  });
  return run(x, ...weights) as T;
}
