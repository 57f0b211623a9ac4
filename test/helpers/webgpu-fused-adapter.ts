// Run by test/integration/webgpu-fused-adapter.test.ts in a process of its own (Dawn's Vulkan
// loader is found through LD_LIBRARY_PATH, read at process start): the webgpu backend with the
// kernels registered as kernels/backends/backend.ts does, and each case's adapted linear layer, value and
// gradients, on the fused kernels and as tfjs ops (the composite version). Prints one JSON line.
import * as tf from '@tensorflow/tfjs-core';
import { mixersTrainable, resolveAdapterSpec, type AdapterSpec } from '../../kernels/adapter/spec';
import { MAX_FUSED_RANK } from '../../kernels/adapter/fused-adapter';
import { initAdapterWeights } from '../../kernels/adapter/init';
import { adaptedLinear, type BaseLinear } from '../../kernels/adapter/linear';
import { computingKernels } from '../../bench/measure';
import { relativeError } from './tensors';
import { runHelper, startWebgpu } from './webgpu-start';

interface Case {
  name: string;
  spec: AdapterSpec;
  x: number[];
  layout: BaseLinear['layout'];
  bias: boolean;
  training: boolean;
  firstSequence: number;
}

const CASES: Case[] = [
  { name: 'moslora, dropout, 2 sequences', spec: { method: 'moslora', dIn: 48, dOut: 40, r: 8, alpha: 16, dropout: 0.1 }, x: [2, 8, 48], layout: 'out_in', bias: false, training: true, firstSequence: 1 },
  { name: 'lora, Conv1D layout, bias, no dropout', spec: { method: 'lora', dIn: 40, dOut: 56, r: 4, alpha: 8, dropout: 0.1 }, x: [3, 5, 40], layout: 'in_out', bias: true, training: false, firstSequence: 0 },
  { name: 'linchain of 3, dropout 0.3', spec: { method: 'linchain', dIn: 33, dOut: 17, r: 5, alpha: 5, chainLength: 3, dropout: 0.3 }, x: [7, 33], layout: 'out_in', bias: false, training: true, firstSequence: 0 },
  { name: 'moslora-fixed (frozen mixer), dropout', spec: { method: 'moslora-fixed', dIn: 24, dOut: 24, r: 6, alpha: 12, dropout: 0.2 }, x: [4, 3, 24], layout: 'out_in', bias: true, training: true, firstSequence: 2 },
  { name: 'moslora r 16, 4,200 rows', spec: { method: 'moslora', dIn: 64, dOut: 96, r: 16, alpha: 32, dropout: 0.05 }, x: [6, 700, 64], layout: 'out_in', bias: false, training: true, firstSequence: 0 },
  // a workgroup a row: 65,600 of them, past WebGPU's 65,535 a dimension; the weights' gradients
  // sum 65,600 rows each
  { name: 'moslora, 65,600 rows', spec: { method: 'moslora', dIn: 8, dOut: 8, r: 4, alpha: 8, dropout: 0.1 }, x: [2, 32800, 8], layout: 'out_in', bias: false, training: true, firstSequence: 0 },
  // the kernels' largest rank, and one past it (which runs as tfjs ops)
  { name: 'moslora r 64', spec: { method: 'moslora', dIn: 80, dOut: 72, r: 64, alpha: 64, dropout: 0.1 }, x: [2, 9, 80], layout: 'out_in', bias: false, training: true, firstSequence: 0 },
  { name: 'moslora r 65', spec: { method: 'moslora', dIn: 80, dOut: 72, r: 65, alpha: 64, dropout: 0.1 }, x: [2, 9, 80], layout: 'out_in', bias: false, training: true, firstSequence: 0 },
];

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

async function main() {
  await startWebgpu();
  const results = [];
  for (const c of CASES) {
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
  console.log(JSON.stringify({ results }));
}

runHelper(main);
