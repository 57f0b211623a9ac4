// Rotary position embedding, x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁] over
// the last axis. As tfjs ops it is 7 kernels forward (two slices, a negation, a concatenation,
// two products and a sum) and 7 backward. On webgpu it is one WGSL kernel each way: the
// gradient of the rotation is the rotation back, g·cos − rotate_half(g)·sin (sin's and cos's two
// halves are equal, as ropeTables makes them), the same kernel with sin's sign flipped. Each
// attention layer rotates q and k: 28 → 4 dispatches a layer.
import * as tf from '@tensorflow/tfjs-core';
import type { WebgpuBackend, WebgpuUtil } from './dropout';

export const ROPE = 'MosloraRope';

interface RopeAttrs {
  /** +1 rotates forward; −1 rotates back (the gradient). */
  direction: number;
}

/** An invocation per element of x [B, heads, T, hd]; cos and sin are [T, hd]. */
function ropeProgram(util: WebgpuUtil, shape: number[]) {
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const dispatchLayout = util.flatDispatchLayout(shape);
  return {
    variableNames: ['x', 'cosines', 'sines'],
    outputShape: shape,
    shaderKey: 'moslora_rope',
    dispatchLayout,
    dispatch: util.computeDispatch(dispatchLayout, shape, workgroupSize),
    workgroupSize,
    size: true,
    uniforms: 'direction : f32,',
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
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
          setOutputAtIndex(index, x[index] * cosines[table] + uniforms.direction * rotated * sines[table]);
        }
      }`,
  };
}

/** Registers the kernel on the webgpu backend (with its package's webgpu_util). */
export function registerWebgpuRope(util: WebgpuUtil): void {
  if (tf.getKernel(ROPE, 'webgpu')) return;
  tf.registerKernel({
    kernelName: ROPE,
    backendName: 'webgpu',
    kernelFunc: ({ backend, inputs, attrs }) => {
      const { x, cos, sin } = inputs as Record<string, tf.TensorInfo>;
      const uniforms = [{ type: 'float32', data: [(attrs as unknown as RopeAttrs).direction] }];
      return (backend as unknown as WebgpuBackend).runWebGPUProgram(ropeProgram(util, x!.shape), [x!, cos!, sin!], 'float32', uniforms);
    },
  });
}

function rotate(x: tf.Tensor, cos: tf.Tensor2D, sin: tf.Tensor2D, direction: number): tf.Tensor4D {
  return tf.engine().runKernel(ROPE, { x, cos, sin }, { direction } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/**
 * x·cos + rotate_half(x)·sin, for x [B, heads, T, head_dim] and cos, sin [T, head_dim] whose
 * halves repeat. `composite` forces tfjs ops where the WGSL kernel is registered (tests compare).
 */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D, composite = false): tf.Tensor4D {
  if (composite || tf.getKernel(ROPE, tf.getBackend()) === undefined) {
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
