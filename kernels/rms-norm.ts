// Llama's RMSNorm, y = x · r · w with r = 1/√(mean(x²) + ε) over the last axis, with its gradient
// written out: dx = r · (g·w − x · r² · mean(g·w·x)). tfjs's own gradient of the same ops ran 13
// kernels a norm and uploaded a tensor of ones the size of x from the host (Mean's gradient
// makes one in JavaScript); this one runs 8. On webgpu the forward and the backward pass are one
// WGSL kernel each, a workgroup per row (the ~100M model has 25 norms: 19 → 2 dispatches each).
// The weight is a constant: norms are frozen (adapters train linear layers), and no gradient
// reaches it.
import * as tf from '@tensorflow/tfjs-core';
import { registerWebgpuProgram, type WebgpuUtil } from './webgpu-program';

export const RMS_NORM = 'MosloraRmsNorm';
export const RMS_NORM_GRAD = 'MosloraRmsNormGrad';

interface RmsNormAttrs {
  eps: number;
}

/** Threads of a workgroup: a row each, striding over its elements. */
const GROUP = 64;

/**
 * A workgroup per row of x [rows, width]: its threads sum `terms` (WGSL expressions of the
 * element index e, one partial sum per term) over the row, the sums meet in workgroup memory
 * (a tree, halving), and `finish` writes the row from the totals (`total0`, `total1`, …).
 */
function rowProgram(util: WebgpuUtil, key: string, variableNames: string[], shape: [number, number], terms: string[], finish: string) {
  const workgroupSize: [number, number, number] = [GROUP, 1, 1];
  const sums = terms.map((_, t) => `sum${t}`);
  return {
    variableNames,
    outputShape: shape,
    shaderKey: key,
    dispatchLayout: util.flatDispatchLayout(shape),
    dispatch: util.computeDispatch({ x: [0] }, [shape[0] * GROUP], workgroupSize),
    workgroupSize,
    uniforms: 'eps : f32,',
    getUserCode: () => `
      var<workgroup> partial : array<vec2<f32>, ${GROUP}>;
      fn main(index : i32) {
        let row = index / ${GROUP};
        let thread = index % ${GROUP};
        let width = uniforms.xShape[1];
        let live = row < uniforms.xShape[0];
        ${sums.map((s) => `var ${s} = 0.0;`).join(' ')}
        if (live) {
          for (var j = thread; j < width; j = j + ${GROUP}) {
            let e = row * width + j;
            ${terms.map((term, t) => `${sums[t]} = ${sums[t]} + ${term};`).join(' ')}
          }
        }
        partial[thread] = vec2<f32>(${sums[0]}, ${sums[1] ?? '0.0'});
        workgroupBarrier();
        for (var stride = ${GROUP / 2}; stride > 0; stride = stride / 2) {
          if (thread < stride) {
            partial[thread] = partial[thread] + partial[thread + stride];
          }
          workgroupBarrier();
        }
        let totals = partial[0];
        let total0 = totals.x;
        let total1 = totals.y;
        let r = inverseSqrt(total0 / f32(width) + uniforms.eps);
        if (live) {
          for (var j = thread; j < width; j = j + ${GROUP}) {
            let e = row * width + j;
            ${finish}
          }
        }
      }`,
  };
}

/** y = x · r · w. */
function forwardProgram(util: WebgpuUtil, shape: [number, number]) {
  return rowProgram(util, 'moslora_rms_norm', ['x', 'w'], shape, ['x[e] * x[e]'], 'setOutputAtIndex(e, x[e] * r * w[j]);');
}

/** dx = r · (g·w − x · r² · mean(g·w·x)), r recomputed from x in the same pass. */
function gradientProgram(util: WebgpuUtil, shape: [number, number]) {
  return rowProgram(
    util,
    'moslora_rms_norm_grad',
    ['x', 'w', 'dy'],
    shape,
    ['x[e] * x[e]', 'dy[e] * w[j] * x[e]'],
    'setOutputAtIndex(e, r * (dy[e] * w[j] - x[e] * (r * r * total1 / f32(width))));',
  );
}

/** Registers the forward and backward kernels on the webgpu backend (with its package's webgpu_util). */
export function registerWebgpuRmsNorm(util: WebgpuUtil): void {
  const kernels: [string, (shape: [number, number]) => object, string[]][] = [
    [RMS_NORM, (shape) => forwardProgram(util, shape), ['x', 'w']],
    [RMS_NORM_GRAD, (shape) => gradientProgram(util, shape), ['x', 'w', 'dy']],
  ];
  for (const [kernelName, program, names] of kernels) {
    registerWebgpuProgram<RmsNormAttrs>(kernelName, (inputs, { eps }) => ({
      program: program(inputs.x!.shape as [number, number]),
      inputs: names.map((name) => inputs[name]!),
      uniforms: [{ type: 'float32', data: [eps] }],
    }));
  }
}

function fusedAvailable(): boolean {
  return tf.getKernel(RMS_NORM, tf.getBackend()) !== undefined;
}

function runFused(kernel: string, inputs: tf.NamedTensorMap, eps: number): tf.Tensor2D {
  return tf.engine().runKernel(kernel, inputs, { eps } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/** 1/√(mean(x²) + ε) of each row of x [rows, width]: [rows, 1]. */
function inverseRms(x: tf.Tensor2D, eps: number): tf.Tensor2D {
  return tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps)) as tf.Tensor2D;
}

/**
 * Llama's RMSNorm over the last axis of x, with the gradient above (to x only). `composite`
 * forces tfjs ops where the WGSL kernels are registered (tests and benchmarks compare the two).
 */
export function rmsNorm<T extends tf.Tensor>(x: T, weight: tf.Tensor1D, eps: number, composite = false): T {
  const width = x.shape[x.rank - 1]!;
  const fused = !composite && fusedAvailable();
  const norm = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const rows = tf.reshape(input, [-1, width]) as tf.Tensor2D;
    if (fused) {
      save([rows]);
      return {
        value: tf.reshape(runFused(RMS_NORM, { x: rows, w: weight }, eps), input.shape),
        gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => tf.reshape(runFused(RMS_NORM_GRAD, { x: saved!, w: weight, dy: tf.reshape(dy, [-1, width]) }, eps), input.shape),
      };
    }
    const r = inverseRms(rows, eps);
    save([rows, r]);
    return {
      value: tf.reshape(tf.mul(tf.mul(rows, r), weight), input.shape),
      gradFunc: (dy: tf.Tensor, [saved, savedR]: tf.Tensor[]) => {
        const gw = tf.mul(tf.reshape(dy, [-1, width]), weight);
        const along = tf.mul(tf.square(savedR!), tf.mean(tf.mul(gw, saved!), -1, true));
        return tf.reshape(tf.mul(tf.sub(gw, tf.mul(saved!, along)), savedR!), input.shape);
      },
    };
  });
  return norm(x) as T;
}
