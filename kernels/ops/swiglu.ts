// SwiGLU's product silu(gate)·up, silu(g) = g·σ(g). As tfjs ops it is 3 kernels forward and 8
// backward (σ's gradient alone is 3). On webgpu it is one WGSL kernel forward and one for each
// input's gradient:
//   d gate = dy · up · σ(g) · (1 + g · (1 − σ(g)))      d up = dy · g · σ(g)
// an MLP layer's 11 dispatches → 3.
import * as tf from '@tensorflow/tfjs-core';
import { elementwiseProgram, ownKernelAvailable, registerWebgpuProgram, runOwnKernel, type WebgpuUtil } from '../backends/webgpu-program';

export const SWIGLU = 'MosloraSwiglu';

/** What the kernel computes: the product, or the gradient of gate or of up. */
type SwigluPart = 'value' | 'gate' | 'up';

/** Each part's inputs (each one read: WebGPU drops the bindings a shader does not use) and its element. */
const PARTS: Record<SwigluPart, { inputs: string[]; expression: string }> = {
  value: { inputs: ['gate', 'up'], expression: 'g * s * up[index]' },
  gate: { inputs: ['gate', 'up', 'dy'], expression: 'dy[index] * up[index] * s * (1.0 + g * (1.0 - s))' },
  up: { inputs: ['gate', 'dy'], expression: 'dy[index] * g * s' },
};

/** Registers the kernel on the webgpu backend (with its package's webgpu_util): an invocation per element. */
export function registerWebgpuSwiglu(util: WebgpuUtil): void {
  registerWebgpuProgram<{ part: SwigluPart }>(SWIGLU, (inputs, { part }) => {
    const programInputs = PARTS[part].inputs.map((name) => inputs[name]!);
    return {
      program: elementwiseProgram(util, {
        key: `moslora_swiglu_${part}`,
        variableNames: PARTS[part].inputs,
        shape: programInputs[0]!.shape,
        body: `
          let g = gate[index];
          let s = 1.0 / (1.0 + exp(-g));
          setOutputAtIndex(index, ${PARTS[part].expression});`,
      }),
      inputs: programInputs,
      uniforms: [],
    };
  });
}

function run<T extends tf.Tensor>(inputs: tf.NamedTensorMap, part: SwigluPart): T {
  return runOwnKernel(SWIGLU, inputs, { part });
}

/** silu(gate)·up, for gate and up of one shape. `composite` forces tfjs ops where the WGSL kernel is registered (tests compare). */
export function swiglu<T extends tf.Tensor>(gate: T, up: T, composite = false): T {
  if (composite || !ownKernelAvailable(SWIGLU)) return tf.mul(tf.mul(gate, tf.sigmoid(gate)), up);
  const product = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [g, u, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([g, u]);
    return {
      value: run({ gate: g, up: u }, 'value'),
      gradFunc: (dy: tf.Tensor, [sg, su]: tf.Tensor[]) => [run({ gate: sg!, up: su!, dy }, 'gate'), run({ gate: sg!, dy }, 'up')],
    };
  });
  return product(gate, up) as T;
}
