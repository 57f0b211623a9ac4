// Rotary position embedding, x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁] over
// the last axis. As tfjs ops it is 7 kernels forward (two slices, a negation, a concatenation,
// two products and a sum) and 7 backward. On webgpu it is one WGSL kernel each way: the
// gradient of the rotation is the rotation back, g·cos − rotate_half(g)·sin (sin's and cos's two
// halves are equal, as ropeTables makes them), the same kernel with sin's sign flipped. Each
// attention layer rotates q and k: 28 → 4 dispatches a layer.
import * as tf from '@tensorflow/tfjs-core';
import { elementwiseProgram, ownKernelAvailable, registerWebgpuProgram, runOwnKernel, type WebgpuUtil } from '../backends/webgpu-program';

export const ROPE = 'MosloraRope';

interface RopeAttrs {
  /** +1 rotates forward; −1 rotates back (the gradient). */
  direction: number;
}

/** Registers the kernel on the webgpu backend (with its package's webgpu_util): an invocation per element of x [B, heads, T, hd]; cos and sin are [T, hd]. */
export function registerWebgpuRope(util: WebgpuUtil): void {
  registerWebgpuProgram<RopeAttrs>(ROPE, ({ x, cos, sin }, a) => ({
    program: elementwiseProgram(util, {
      key: 'moslora_rope',
      variableNames: ['x', 'cosines', 'sines'],
      shape: x!.shape,
      uniforms: 'direction : f32,',
      body: `
        let hd = uniforms.xShape[3];
        let half = hd / 2;
        let i = index % hd;
        let table = ((index / hd) % uniforms.xShape[2]) * hd + i;
        var rotated : f32;
        if (i < half) {
          rotated = -x[index + half];
        } else {
          rotated = x[index - half];
        }
        setOutputAtIndex(index, x[index] * cosines[table] + uniforms.direction * rotated * sines[table]);`,
    }),
    inputs: [x!, cos!, sin!],
    uniforms: [{ type: 'float32', data: [a.direction] }],
  }));
}

function rotate(x: tf.Tensor, cos: tf.Tensor2D, sin: tf.Tensor2D, direction: number): tf.Tensor4D {
  return runOwnKernel(ROPE, { x, cos, sin }, { direction });
}

/**
 * x·cos + rotate_half(x)·sin, for x [B, heads, T, head_dim] and cos, sin [T, head_dim] whose
 * halves repeat. `composite` forces tfjs ops where the WGSL kernel is registered (tests compare).
 */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D, composite = false): tf.Tensor4D {
  if (composite || !ownKernelAvailable(ROPE)) {
    const [x1, x2] = tf.split(x, 2, -1);
    const rotated = tf.concat([tf.neg(x2!), x1!], -1);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  }
  const rope = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
    // kept for the backward pass, which runs after the forward pass's tidy has freed the tables
    save([cos, sin]);
    return { value: rotate(input, cos, sin, 1), gradFunc: (dy: tf.Tensor, [c, s]: tf.Tensor[]) => rotate(dy, c as tf.Tensor2D, s as tf.Tensor2D, -1) };
  });
  return rope(x) as tf.Tensor4D;
}
