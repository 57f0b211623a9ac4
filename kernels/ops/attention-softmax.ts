// Attention's weights, softmax(scores·scale + mask) over the keys. As tfjs ops it is a product,
// a sum and tfjs's Softmax forward (3 dispatches) and, backward, tfjs's gradient of the three; on
// webgpu it is one WGSL kernel each way, a workgroup per row (kernels/backends/webgpu-program.ts
// rowProgram): the row's maximum, the sum of exp(logit − maximum), then the weights; and from the
// weights y and their gradient g,
//   d scores = scale · y · (g − Σ g·y).
// The scaled, masked logits are never stored. The mask is a constant (no gradient reaches it).
import * as tf from '@tensorflow/tfjs-core';
import { overRows, ownKernelAvailable, registerWebgpuProgram, rowProgram, runOwnKernel, type WebgpuUtil } from '../backends/webgpu-program';

export const ATTENTION_SOFTMAX = 'MosloraAttentionSoftmax';
export const ATTENTION_SOFTMAX_GRAD = 'MosloraAttentionSoftmaxGrad';

interface AttentionSoftmaxAttrs {
  scale: number;
}

/** Element e's logit: row `row` of x [B·heads·T, S] is query position row mod T, mask [T, S]'s row. */
const LOGIT = 'x[e] * uniforms.scale + mask[(row % uniforms.maskShape[0]) * width + j]';

/** Registers the forward and backward kernels on the webgpu backend (with its package's webgpu_util). */
export function registerWebgpuAttentionSoftmax(util: WebgpuUtil): void {
  registerWebgpuProgram<AttentionSoftmaxAttrs>(ATTENTION_SOFTMAX, ({ x, mask }, { scale }) => ({
    program: rowProgram(util, {
      key: 'moslora_attention_softmax',
      variableNames: ['x', 'mask'],
      shape: x!.shape as [number, number],
      uniforms: 'scale : f32,',
      phases: [
        { terms: [LOGIT], max: true, then: 'let top = total0.x;' },
        { terms: [`exp(${LOGIT} - top)`] },
      ],
      finish: `setOutputAtIndex(e, exp(${LOGIT} - top) / total1.x);`,
    }),
    inputs: [x!, mask!],
    uniforms: [{ type: 'float32', data: [scale] }],
  }));
  // x: the weights the forward kernel gave
  registerWebgpuProgram<AttentionSoftmaxAttrs>(ATTENTION_SOFTMAX_GRAD, ({ x, dy }, { scale }) => ({
    program: rowProgram(util, {
      key: 'moslora_attention_softmax_grad',
      variableNames: ['x', 'dy'],
      shape: x!.shape as [number, number],
      uniforms: 'scale : f32,',
      phases: [{ terms: ['dy[e] * x[e]'] }],
      finish: 'setOutputAtIndex(e, uniforms.scale * x[e] * (dy[e] - total0.x));',
    }),
    inputs: [x!, dy!],
    uniforms: [{ type: 'float32', data: [scale] }],
  }));
}

/**
 * softmax(scores·scale + mask) over the last axis, for scores [B, heads, T, S] and mask [T, S];
 * its gradient goes to scores only. `composite` forces tfjs ops where the WGSL kernels are
 * registered (tests and benchmarks compare the two).
 */
export function attentionSoftmax(scores: tf.Tensor4D, mask: tf.Tensor2D, scale: number, composite = false): tf.Tensor4D {
  if (composite || !ownKernelAvailable(ATTENTION_SOFTMAX)) return tf.softmax(tf.add<tf.Tensor4D>(tf.mul(scores, scale), mask));
  return overRows(
    scores,
    'output',
    (rows) => runOwnKernel(ATTENTION_SOFTMAX, { x: rows, mask }, { scale }),
    (y, dy) => runOwnKernel(ATTENTION_SOFTMAX_GRAD, { x: y, dy }, { scale }),
  );
}
