// GPT-2's gelu_new, the tanh approximation y = ½·x·(1 + t), t = tanh(u), u = √(2/π)·(x + 0.044715·x³).
// As tfjs ops with tfjs's gradient it takes 22 dispatches forward and backward; on webgpu it is
// one WGSL kernel for the value and one for the gradient:
//   dy/dx = ½·(1 + t) + ½·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²).
// tanh is computed from exp(−2|u|), which cannot overflow, as tfjs's own Tanh kernel does.
import * as tf from '@tensorflow/tfjs-core';
import { elementwiseProgram, ownKernelAvailable, registerWebgpuProgram, runOwnKernel, type WebgpuUtil } from '../backends/webgpu-program';

export const GELU = 'MosloraGelu';

const CUBIC = 0.044715;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** WGSL: v = x[index] and t = tanh(u) of it. */
const TANH_OF_U = `
  let v = x[index];
  let u = ${SQRT_2_OVER_PI} * (v + ${CUBIC} * v * v * v);
  let e = exp(-2.0 * abs(u));
  let t = sign(u) * (1.0 - e) / (1.0 + e);`;

/** Each part's inputs and its element. */
const PARTS = {
  value: { inputs: ['x'], expression: '0.5 * v * (1.0 + t)' },
  gradient: { inputs: ['x', 'dy'], expression: `dy[index] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * ${SQRT_2_OVER_PI} * (1.0 + ${3 * CUBIC} * v * v))` },
};

type GeluPart = keyof typeof PARTS;

/** Registers the kernel on the webgpu backend (with its package's webgpu_util): an invocation per element. */
export function registerWebgpuGelu(util: WebgpuUtil): void {
  registerWebgpuProgram<{ part: GeluPart }>(GELU, (inputs, { part }) => {
    const programInputs = PARTS[part].inputs.map((name) => inputs[name]!);
    return {
      program: elementwiseProgram(util, {
        key: `moslora_gelu_${part}`,
        variableNames: PARTS[part].inputs,
        shape: programInputs[0]!.shape,
        body: `${TANH_OF_U}
          setOutputAtIndex(index, ${PARTS[part].expression});`,
      }),
      inputs: programInputs,
      uniforms: [],
    };
  });
}

function run<T extends tf.Tensor>(inputs: tf.NamedTensorMap, part: GeluPart): T {
  return runOwnKernel(GELU, inputs, { part });
}

/** gelu_new(x). `composite` forces tfjs ops where the WGSL kernel is registered (tests compare). */
export function geluNew<T extends tf.Tensor>(x: T, composite = false): T {
  if (composite || !ownKernelAvailable(GELU)) {
    const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), CUBIC)), SQRT_2_OVER_PI);
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  }
  const gelu = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([input]);
    return { value: run({ x: input }, 'value'), gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => run({ x: saved!, dy }, 'gradient') };
  });
  return gelu(x) as T;
}
