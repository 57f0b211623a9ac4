// SwiGLU's product silu(gate)·up, silu(g) = g·σ(g). As tfjs ops it is 3 kernels forward and 8
// backward (σ's gradient alone is 3). On webgpu it is one WGSL kernel forward and one for each
// input's gradient:
//   d gate = dy · up · σ(g) · (1 + g · (1 − σ(g)))      d up = dy · g · σ(g)
// an MLP layer's 11 dispatches → 3.
import * as tf from '@tensorflow/tfjs-core';
import type { WebgpuBackend, WebgpuUtil } from './dropout';

export const SWIGLU = 'MosloraSwiglu';

/** What the kernel computes: the product, or the gradient of gate or of up. */
type SwigluPart = 'value' | 'gate' | 'up';

/** Each part's inputs (each one read: WebGPU drops the bindings a shader does not use) and its element. */
const PARTS: Record<SwigluPart, { inputs: string[]; expression: string }> = {
  value: { inputs: ['gate', 'up'], expression: 'g * s * up[index]' },
  gate: { inputs: ['gate', 'up', 'dy'], expression: 'dy[index] * up[index] * s * (1.0 + g * (1.0 - s))' },
  up: { inputs: ['gate', 'dy'], expression: 'dy[index] * g * s' },
};

/** An invocation per element. */
function swigluProgram(util: WebgpuUtil, shape: number[], part: SwigluPart) {
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const dispatchLayout = util.flatDispatchLayout(shape);
  return {
    variableNames: PARTS[part].inputs,
    outputShape: shape,
    shaderKey: `moslora_swiglu_${part}`,
    dispatchLayout,
    dispatch: util.computeDispatch(dispatchLayout, shape, workgroupSize),
    workgroupSize,
    size: true,
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let g = gate[index];
          let s = 1.0 / (1.0 + exp(-g));
          setOutputAtIndex(index, ${PARTS[part].expression});
        }
      }`,
  };
}

/** Registers the kernel on the webgpu backend (with its package's webgpu_util). */
export function registerWebgpuSwiglu(util: WebgpuUtil): void {
  if (tf.getKernel(SWIGLU, 'webgpu')) return;
  tf.registerKernel({
    kernelName: SWIGLU,
    backendName: 'webgpu',
    kernelFunc: ({ backend, inputs, attrs }) => {
      const part = (attrs as unknown as { part: SwigluPart }).part;
      const programInputs = PARTS[part].inputs.map((name) => inputs[name] as tf.TensorInfo);
      return (backend as unknown as WebgpuBackend).runWebGPUProgram(swigluProgram(util, programInputs[0]!.shape, part), programInputs, 'float32', []);
    },
  });
}

function run<T extends tf.Tensor>(inputs: tf.NamedTensorMap, part: SwigluPart): T {
  return tf.engine().runKernel(SWIGLU, inputs, { part } as unknown as tf.NamedAttrMap) as T;
}

/** silu(gate)·up, for gate and up of one shape. `composite` forces tfjs ops where the WGSL kernel is registered (tests compare). */
export function swiglu<T extends tf.Tensor>(gate: T, up: T, composite = false): T {
  if (composite || tf.getKernel(SWIGLU, tf.getBackend()) === undefined) return tf.mul(tf.mul(gate, tf.sigmoid(gate)), up);
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
