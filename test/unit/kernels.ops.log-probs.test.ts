// The loss's log-probabilities of the targets (kernels/ops/log-probs.ts) on wasm and cpu: values
// and gradients against log-softmax and a one-hot pick, without [rows × vocab] temporaries kept for
// the backward pass.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { targetLogProbs } from '../../kernels/ops/log-probs';
import { maxAbsDiff } from '../helpers/tensors';

/** The composite form the kernel replaces: log-softmax, then a one-hot pick. */
function composite(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(targets, logits.shape[1])), -1);
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`targetLogProbs on ${backend}`, () => {
    before(async () => {
      await selectBackend(backend);
    });

    // [rows, vocab]: one chunk, and 300 × 32000 rows, which the kernel takes in two chunks.
    for (const [rows, vocab] of [[7, 11], [300, 32000]] as const) {
      it(`[${rows} × ${vocab}]: values and gradients equal the log-softmax pick's`, () => {
        tf.tidy(() => {
          const logits = tf.mul(tf.randomNormal([rows, vocab], 0, 1, 'float32', 3), 4) as tf.Tensor2D;
          const targets = tf.tensor1d(Array.from({ length: rows }, (_, i) => (i * 7919) % vocab), 'int32');
          const weights = tf.randomUniform([rows], -1, 1, 'float32', 5);
          assert.ok(maxAbsDiff(targetLogProbs(logits, targets), composite(logits, targets)) < 1e-4);
          const loss = (f: typeof composite) => (x: tf.Tensor) => tf.sum(tf.mul(f(x as tf.Tensor2D, targets), weights));
          assert.ok(maxAbsDiff(tf.grad(loss(targetLogProbs))(logits), tf.grad(loss(composite))(logits)) < 1e-6);
        });
      });
    }

    it('keeps no [rows × vocab] temporaries for the backward pass beyond the logits', () => {
      const logits = tf.randomNormal([64, 1000]) as tf.Tensor2D;
      const targets = tf.tensor1d(Array.from({ length: 64 }, (_, i) => i), 'int32');
      const scale = tf.variable(tf.scalar(1));
      const held = (f: typeof composite) => {
        const before = tf.memory().numBytes;
        let kept = 0;
        const { value, grads } = tf.variableGrads(() => {
          const out = tf.sum(f(tf.mul(logits, scale), targets)) as tf.Scalar;
          kept = tf.memory().numBytes - before;
          return out;
        }, [scale]);
        tf.dispose([value, ...Object.values(grads)]);
        return kept;
      };
      const [ours, theirs] = [held(targetLogProbs), held(composite)];
      assert.ok(ours < theirs / 2, `bytes held for the backward pass: ${ours} vs the composite's ${theirs}`);
      tf.dispose([logits, targets, scale]);
    });

    it('refuses targets that do not match the rows', () => {
      assert.throws(() => targetLogProbs(tf.zeros([3, 4]), tf.tensor1d([0, 1], 'int32')), /2 targets for 3 rows/);
    });
  });
}
