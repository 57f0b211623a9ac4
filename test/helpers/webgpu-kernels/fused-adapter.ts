// Run by test/integration/webgpu-kernels.test.ts in a process of its own (Dawn's Vulkan loader
// is found through LD_LIBRARY_PATH, read at process start): the webgpu backend with the kernels
// registered as kernels/backends/backend.ts does, and each case's adapted linear layer, value and
// gradients, on the fused kernels and as tfjs ops (the composite version).
import * as tf from '@tensorflow/tfjs-core';
import { mixersTrainable, resolveAdapterSpec, type AdapterSpec } from '../../../kernels/adapter/spec';
import { MAX_FUSED_RANK } from '../../../kernels/adapter/fused-adapter';
import { initAdapterWeights } from '../../../kernels/adapter/init';
import { adaptedLinear, type BaseLinear } from '../../../kernels/adapter/linear';
import { computingKernels } from '../../../bench/measure';
import { relativeError } from '../tensors';
import { runCases } from '../webgpu-start';

export interface Case {
  name: string;
  spec: AdapterSpec;
  x: number[];
  layout: BaseLinear['layout'];
  bias: boolean;
  training: boolean;
  firstSequence: number;
}

export interface Result {
  name: string;
  fusedExpected: boolean;
  errors: number[];
  sizes: number[];
  fusedKernels: string[];
  compositeKernels: string[];
}

async function runCase(c: Case, composite: boolean) {
  const spec = resolveAdapterSpec({ ...c.spec, bInit: 'kaiming' });
  const weights = initAdapterWeights(spec, 11);
  const weight = tf.randomNormal(c.layout === 'out_in' ? [spec.dOut, spec.dIn] : [spec.dIn, spec.dOut], 0, 0.2, 'float32', 5) as tf.Tensor2D;
  const base: BaseLinear = { weight, layout: c.layout, ...(c.bias ? { bias: tf.randomNormal([spec.dOut], 0, 1, 'float32', 6) as tf.Tensor1D } : {}) };
  const x = tf.randomNormal(c.x, 0, 1, 'float32', 7);
  const dy = tf.randomNormal([...c.x.slice(0, -1), spec.dOut], 0, 1, 'float32', 8);
  const learned = mixersTrainable(spec);
  const options = { training: c.training, dropoutSeed: 1234.5, firstSequence: c.firstSequence, composite };
  const f = (...args: tf.Tensor[]) => {
    const [xIn, A, ...rest] = args as tf.Tensor2D[];
    const B = rest.pop()!;
    const y = adaptedLinear(xIn!, base, { spec, weights: { A: A!, B, mixers: learned ? rest : weights.mixers } }, options);
    return tf.sum(tf.mul(y, dy));
  };
  const inputs = [x, weights.A, ...(learned ? weights.mixers : []), weights.B];
  const y = adaptedLinear(x, base, { spec, weights }, options);
  let grads: tf.Tensor[] = [];
  // one forward and backward pass: the dispatches of a training step's layer
  const { kernels } = await tf.profile(() => (grads = tf.grads(f)(inputs)));
  const outputs = [y, ...grads];
  const values = await Promise.all(outputs.map(async (t) => Array.from(await t.data())));
  tf.dispose([...outputs, ...inputs, weight, dy, ...(base.bias ? [base.bias] : []), ...weights.mixers]);
  return { values, kernels: kernels.map((k) => k.name) };
}

runCases<Case, Result>(async (cases) => {
  const results = [];
  for (const c of cases) {
    const fused = await runCase(c, false);
    const composite = await runCase(c, true);
    results.push({
      name: c.name,
      fusedExpected: c.spec.r <= MAX_FUSED_RANK,
      // the value, then the gradients of x, A, the learned mixers and B
      errors: fused.values.map((v, i) => relativeError(v, composite.values[i]!)),
      sizes: composite.values.map((v) => v.length),
      fusedKernels: computingKernels(fused.kernels),
      compositeKernels: computingKernels(composite.kernels),
    });
  }
  return results;
});
