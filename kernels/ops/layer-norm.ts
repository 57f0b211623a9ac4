// GPT-2's LayerNorm, y = x̂·w + b with x̂ = (x − μ)·r, r = 1/√(var + ε), over the last axis
// (the biased variance, as torch). As tfjs ops with tfjs's gradient it takes 31 dispatches
// forward and backward, and 8 uploads from the host (the gradient of each mean makes a tensor of
// ones the size of x in JavaScript). On webgpu the forward and the backward pass are one WGSL
// kernel each, a workgroup per row: the mean, then the variance about it (two passes over the
// row, as torch, not E[x²] − μ², which loses digits when |μ| is large against the spread), then
//   dx = r · (g·w − mean(g·w) − x̂ · mean(g·w·x̂)).
// Weight and bias are constants: norms are frozen (adapters train linear layers).
import * as tf from '@tensorflow/tfjs-core';
import { overRows, ownKernelAvailable, registerWebgpuProgram, rowProgram, runOwnKernel, type RowPhase, type WebgpuUtil } from '../backends/webgpu-program';

export const LAYER_NORM = 'MosloraLayerNorm';
export const LAYER_NORM_GRAD = 'MosloraLayerNormGrad';

interface LayerNormAttrs {
  eps: number;
}

/** The row's mean, then r from the variance about it; x̂ of element e is `(x[e] - mean) * r`. */
const STATISTICS: RowPhase[] = [
  { terms: ['x[e]'], then: 'let mean = total0.x / f32(width);' },
  { terms: ['(x[e] - mean) * (x[e] - mean)'], then: 'let r = inverseSqrt(total1.x / f32(width) + uniforms.eps);' },
];

function program(util: WebgpuUtil, kernel: string, shape: [number, number]) {
  const common = { shape, uniforms: 'eps : f32,' };
  if (kernel === LAYER_NORM) {
    return rowProgram(util, { ...common, key: 'moslora_layer_norm', variableNames: ['x', 'w', 'b'], phases: STATISTICS, finish: 'setOutputAtIndex(e, (x[e] - mean) * r * w[j] + b[j]);' });
  }
  return rowProgram(util, {
    ...common,
    key: 'moslora_layer_norm_grad',
    variableNames: ['x', 'w', 'dy'],
    phases: [...STATISTICS, { terms: ['dy[e] * w[j]', 'dy[e] * w[j] * (x[e] - mean) * r'] }],
    finish: 'setOutputAtIndex(e, r * (dy[e] * w[j] - total2.x / f32(width) - (x[e] - mean) * r * (total2.y / f32(width))));',
  });
}

/** Registers the forward and backward kernels on the webgpu backend (with its package's webgpu_util). */
export function registerWebgpuLayerNorm(util: WebgpuUtil): void {
  const inputs: Record<string, string[]> = { [LAYER_NORM]: ['x', 'w', 'b'], [LAYER_NORM_GRAD]: ['x', 'w', 'dy'] };
  for (const [kernelName, names] of Object.entries(inputs)) {
    registerWebgpuProgram<LayerNormAttrs>(kernelName, (given, { eps }) => ({
      program: program(util, kernelName, given.x!.shape as [number, number]),
      inputs: names.map((name) => given[name]!),
      uniforms: [{ type: 'float32', data: [eps] }],
    }));
  }
}

/**
 * LayerNorm over the last axis of x, with the biased variance as torch uses; its gradient goes
 * to x only. `composite` forces tfjs ops (and tfjs's gradient) where the WGSL kernels are
 * registered (tests and benchmarks compare the two).
 */
export function layerNorm<T extends tf.Tensor>(x: T, weight: tf.Tensor1D, bias: tf.Tensor1D, eps: number, composite = false): T {
  if (composite || !ownKernelAvailable(LAYER_NORM)) {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), weight), bias);
  }
  return overRows(
    x,
    'input',
    (rows) => runOwnKernel(LAYER_NORM, { x: rows, w: weight, b: bias }, { eps }),
    (rows, dy) => runOwnKernel(LAYER_NORM_GRAD, { x: rows, w: weight, dy }, { eps }),
  );
}
