// Llama's RMSNorm, y = x · r · w with r = 1/√(mean(x²) + ε) over the last axis, with its gradient
// written out: dx = r · (g·w − x · r² · mean(g·w·x)). tfjs's own gradient of the same ops ran 13
// kernels a norm and uploaded a tensor of ones the size of x from the host (Mean's gradient
// makes one in JavaScript); this one runs 8. On webgpu the forward and the backward pass are one
// WGSL kernel each, a workgroup per row (the ~100M model has 25 norms: 19 → 2 dispatches each).
// The weight is a constant: norms are frozen (adapters train linear layers), and no gradient
// reaches it.
import * as tf from '@tensorflow/tfjs-core';
import { overRows, ownKernelAvailable, registerWebgpuProgram, rowProgram, runOwnKernel, type WebgpuUtil } from '../backends/webgpu-program';

export const RMS_NORM = 'MosloraRmsNorm';
export const RMS_NORM_GRAD = 'MosloraRmsNormGrad';

interface RmsNormAttrs {
  eps: number;
}

/** r = 1/√(mean(x²) + ε), from the first phase's sums. */
const INVERSE_RMS = 'let r = inverseSqrt(total0.x / f32(width) + uniforms.eps);';

/** y = x · r · w. */
function forwardProgram(util: WebgpuUtil, shape: [number, number]) {
  return rowProgram(util, {
    key: 'moslora_rms_norm',
    variableNames: ['x', 'w'],
    shape,
    uniforms: 'eps : f32,',
    phases: [{ terms: ['x[e] * x[e]'], then: INVERSE_RMS }],
    finish: 'setOutputAtIndex(e, x[e] * r * w[j]);',
  });
}

/** dx = r · (g·w − x · r² · mean(g·w·x)), r recomputed from x in the same pass. */
function gradientProgram(util: WebgpuUtil, shape: [number, number]) {
  return rowProgram(util, {
    key: 'moslora_rms_norm_grad',
    variableNames: ['x', 'w', 'dy'],
    shape,
    uniforms: 'eps : f32,',
    phases: [{ terms: ['x[e] * x[e]', 'dy[e] * w[j] * x[e]'], then: INVERSE_RMS }],
    finish: 'setOutputAtIndex(e, r * (dy[e] * w[j] - x[e] * (r * r * total0.y / f32(width))));',
  });
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

/** 1/√(mean(x²) + ε) of each row of x [rows, width]: [rows, 1]. */
function inverseRms(x: tf.Tensor2D, eps: number): tf.Tensor2D {
  return tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps)) as tf.Tensor2D;
}

/**
 * Llama's RMSNorm over the last axis of x, with the gradient above (to x only). `composite`
 * forces tfjs ops where the WGSL kernels are registered (tests and benchmarks compare the two).
 */
export function rmsNorm<T extends tf.Tensor>(x: T, weight: tf.Tensor1D, eps: number, composite = false): T {
  if (!composite && ownKernelAvailable(RMS_NORM)) {
    return overRows(
      x,
      'input',
      (rows) => runOwnKernel(RMS_NORM, { x: rows, w: weight }, { eps }),
      (rows, dy) => runOwnKernel(RMS_NORM_GRAD, { x: rows, w: weight, dy }, { eps }),
    );
  }
  const width = x.shape[x.rank - 1]!;
  const norm = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const rows = tf.reshape(input, [-1, width]) as tf.Tensor2D;
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
