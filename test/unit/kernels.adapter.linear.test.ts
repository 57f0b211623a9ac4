// The adapted linear layer (kernels/adapter/linear.ts) on cpu and wasm: every gradient against
// finite differences, LoRA against a float64 hand computation, mixers, input ranks and dropout; and
// no tensor left behind by 100 training steps.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { adapterScaling, resolveAdapterSpec } from '../../kernels/adapter/spec';
import { selectBackend } from '../../kernels/backends/backend';
import { initAdapterWeights, type AdapterWeights } from '../../kernels/adapter/init';
import { adaptedLinear, type Adapter, type TensorBaseLinear } from '../../kernels/adapter/linear';
import { seededAdapter } from '../helpers/adapters';
import { finiteDifferences, maxAbsDiff, seeded } from '../helpers/tensors';
import { ADAPTER_METHODS, type AdapterMethod } from '../../protocol/methods';

const N = 3;
const D_IN = 5;
const D_OUT = 4;
const R = 2;

function makeAdapter(method: AdapterMethod, seed: number, dropout = 0): Adapter {
  return seededAdapter(resolveAdapterSpec({ method, dIn: D_IN, dOut: D_OUT, r: R, alpha: 3, chainLength: 3, dropout }), seed);
}

function makeBase(layout: TensorBaseLinear['layout'], seed: number): TensorBaseLinear {
  const shape: [number, number] = layout === 'out_in' ? [D_OUT, D_IN] : [D_IN, D_OUT];
  return { weight: seeded(shape, seed) as tf.Tensor2D, bias: seeded([D_OUT], seed + 9) as tf.Tensor1D, layout };
}

// A non-polynomial loss, so that central differences are not exact by accident and a wrong
// gradient cannot hide behind linearity.
function lossOf(y: tf.Tensor, g: tf.Tensor): tf.Scalar {
  return tf.sum(tf.mul(tf.sin(y), g));
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const tolerance = 2e-3 + 1e-2 * Math.abs(expected[i]!);
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= tolerance,
      `${what}[${i}]: analytic ${actual[i]} vs finite differences ${expected[i]}`,
    );
  }
}

/** Plain JS float64 reference: x·Wᵀ + b + s·x·Aᵀ·Bᵀ, from the raw values. */
function handLora(x: tf.Tensor, base: TensorBaseLinear, adapter: Adapter): number[] {
  const xs = x.dataSync();
  const w = base.weight.dataSync();
  const b = base.bias!.dataSync();
  const a = adapter.weights.A.dataSync();
  const bb = adapter.weights.B.dataSync();
  const s = adapterScaling(adapter.spec);
  const out: number[] = [];
  for (let n = 0; n < N; n++) {
    const u = Array.from({ length: R }, (_, k) => {
      let acc = 0;
      for (let i = 0; i < D_IN; i++) acc += xs[n * D_IN + i]! * a[k * D_IN + i]!;
      return acc;
    });
    for (let o = 0; o < D_OUT; o++) {
      let acc = b[o]!;
      for (let i = 0; i < D_IN; i++) {
        const wOI = base.layout === 'out_in' ? w[o * D_IN + i]! : w[i * D_OUT + o]!;
        acc += xs[n * D_IN + i]! * wOI;
      }
      for (let k = 0; k < R; k++) acc += s * u[k]! * bb[o * R + k]!;
      out.push(acc);
    }
  }
  return out;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`adaptedLinear on ${backend}`, () => {
    before(async () => {
      await selectBackend(backend);
    });

    for (const method of ADAPTER_METHODS) {
      for (const layout of ['out_in', 'in_out'] as const) {
        for (const dropout of [0, 0.3]) {
          it(`${method}, base ${layout}, dropout ${dropout}: gradients of x, A, B and mixers match finite differences`, () => {
            const adapter = makeAdapter(method, 11, dropout);
            const base = makeBase(layout, 3);
            const x = seeded([N, D_IN], 5);
            const g = seeded([N, D_OUT], 7);
            const options = { training: true, dropoutSeed: 42 };
            const learned = method === 'moslora' || method === 'linchain';
            const inputs: [string, tf.Tensor][] = [
              ['x', x],
              ['A', adapter.weights.A],
              ['B', adapter.weights.B],
              ...(learned ? adapter.weights.mixers.map((m, i): [string, tf.Tensor] => [`M${i + 1}`, m]) : []),
            ];
            const forward = (values: tf.Tensor[]): tf.Scalar => {
              const byName = new Map(inputs.map(([name], i) => [name, values[i]!]));
              const weights: AdapterWeights = {
                A: byName.get('A') as tf.Tensor2D,
                B: byName.get('B') as tf.Tensor2D,
                mixers: learned ? adapter.weights.mixers.map((_, i) => byName.get(`M${i + 1}`) as tf.Tensor2D) : adapter.weights.mixers,
              };
              return lossOf(adaptedLinear(byName.get('x')!, base, { spec: adapter.spec, weights }, options), g);
            };
            const analytic = tf.grads((...values: tf.Tensor[]) => forward(values))(inputs.map(([, t]) => t));
            inputs.forEach(([name, tensor], i) => {
              const numeric = finiteDifferences(
                (perturbed) => forward(inputs.map(([, t], j) => (j === i ? perturbed : t))),
                tensor,
                1e-2,
              );
              const values = analytic[i]!.dataSync();
              expectClose(values, numeric, `${method}/${layout}/${name}`);
              assert.ok(values.some((v) => Math.abs(v) > 1e-4), `${name} gradient should not vanish`);
            });
          });
        }
      }
    }

    it('lora equals the hand-computed x·Wᵀ + b + s·x·Aᵀ·Bᵀ, for both base layouts', () => {
      for (const layout of ['out_in', 'in_out'] as const) {
        const adapter = makeAdapter('lora', 21);
        const base = makeBase(layout, 4);
        const x = seeded([N, D_IN], 8);
        const y = adaptedLinear(x, base, adapter).dataSync();
        handLora(x, base, adapter).forEach((expected, i) => assert.ok(Math.abs(y[i]! - expected) < 1e-5, `${layout} y[${i}]`));
      }
    });

    it('an identity mixer gives exactly the LoRA output', () => {
      const lora = makeAdapter('lora', 31);
      const spec = resolveAdapterSpec({ method: 'moslora', dIn: D_IN, dOut: D_OUT, r: R, alpha: 3, mixerInit: 'identity' });
      const moslora: Adapter = { spec, weights: { ...lora.weights, mixers: [tf.eye(R) as tf.Tensor2D] } };
      const base = makeBase('out_in', 5);
      const x = seeded([N, D_IN], 9);
      assert.ok(maxAbsDiff(adaptedLinear(x, base, lora), adaptedLinear(x, base, moslora)) < 1e-6);
    });

    it('the mixer changes the output (MoSLoRA is not LoRA once M ≠ I)', () => {
      const adapter = makeAdapter('moslora', 41);
      const base = makeBase('out_in', 6);
      const x = seeded([N, D_IN], 10);
      const lora: Adapter = { spec: resolveAdapterSpec({ ...adapter.spec, method: 'lora' }), weights: { ...adapter.weights, mixers: [] } };
      assert.ok(maxAbsDiff(adaptedLinear(x, base, adapter), adaptedLinear(x, base, lora)) > 1e-3);
    });

    it('accepts inputs of any rank [..., d_in] and keeps the leading dimensions', () => {
      const adapter = makeAdapter('moslora', 51);
      const base = makeBase('out_in', 7);
      const x3 = seeded([2, N, D_IN], 12);
      const y3 = adaptedLinear(x3, base, adapter);
      assert.deepEqual(y3.shape, [2, N, D_OUT]);
      const y2 = adaptedLinear(tf.reshape(x3, [2 * N, D_IN]), base, adapter);
      assert.ok(maxAbsDiff(tf.reshape(y3, [2 * N, D_OUT]), y2) < 1e-6);
    });

    it('dropout: off at inference, seeded while training, and only on the adapter path', () => {
      const adapter = makeAdapter('moslora', 61, 0.5);
      const base = makeBase('out_in', 8);
      const x = seeded([N, D_IN], 13);
      const inference = adaptedLinear(x, base, adapter);
      const plain = adaptedLinear(x, base, { ...adapter, spec: { ...adapter.spec, dropout: 0 } });
      assert.ok(maxAbsDiff(inference, plain) < 1e-7, 'no dropout outside training');
      const a = adaptedLinear(x, base, adapter, { training: true, dropoutSeed: 1 });
      const b = adaptedLinear(x, base, adapter, { training: true, dropoutSeed: 1 });
      const c = adaptedLinear(x, base, adapter, { training: true, dropoutSeed: 2 });
      assert.ok(maxAbsDiff(a, b) < 1e-7, 'same seed, same mask');
      assert.ok(maxAbsDiff(a, c) > 1e-4, 'another seed, another mask');
      const zeroB: Adapter = { ...adapter, weights: { ...adapter.weights, B: tf.zerosLike(adapter.weights.B) as tf.Tensor2D } };
      assert.ok(maxAbsDiff(adaptedLinear(x, base, zeroB, { training: true, dropoutSeed: 1 }), adaptedLinear(x, base, null)) < 1e-6, 'the base path sees the input undropped');
    });
  });

    it('dropout: a batch split by sequences, each part passing its first sequence, gets the whole batch\'s masks', () => {
      const adapter = makeAdapter('moslora', 67, 0.5);
      const base = makeBase('out_in', 8);
      const x3 = seeded([4, N, D_IN], 19) as tf.Tensor3D;
      const options = { training: true, dropoutSeed: 5 };
      const whole = adaptedLinear(x3, base, adapter, options);
      const parts = [0, 1, 3].map((first, i, starts) => {
        const end = starts[i + 1] ?? 4;
        return adaptedLinear(tf.slice(x3, [first, 0, 0], [end - first, N, D_IN]), base, adapter, { ...options, firstSequence: first });
      });
      assert.ok(maxAbsDiff(tf.concat(parts), whole) < 1e-6, 'the parts are the whole, row for row');
      const unshifted = adaptedLinear(tf.slice(x3, [3, 0, 0], [1, N, D_IN]), base, adapter, options);
      assert.ok(maxAbsDiff(unshifted, parts[2]!) > 1e-4, 'sequence 3 drawn as sequence 0 gets another mask');
    });
}

describe('memory', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('the tensor count after 100 forward+backward+Adam steps equals the count after 1', () => {
    const spec = resolveAdapterSpec({ method: 'linchain', dIn: 32, dOut: 24, r: 4, alpha: 8, dropout: 0.1 });
    const init = initAdapterWeights(spec, 1);
    const A = tf.variable(init.A);
    const B = tf.variable(init.B);
    const mixers = init.mixers.map((m) => tf.variable(m));
    const layer: TensorBaseLinear = { weight: seeded([24, 32], 2) as tf.Tensor2D, layout: 'out_in' };
    const x = seeded([2, 6, 32], 3);
    const target = seeded([2, 6, 24], 4);
    const optimizer = tf.train.adam(1e-2);
    let seed = 0;
    const step = () =>
      optimizer.minimize(() => {
        const y = adaptedLinear(x, layer, { spec, weights: { A, B, mixers } }, { training: true, dropoutSeed: seed++ });
        return tf.losses.meanSquaredError(target, y) as tf.Scalar;
      }, false, [A, B, ...mixers]);
    step();
    const afterOne = tf.memory().numTensors;
    for (let i = 0; i < 99; i++) step();
    assert.equal(tf.memory().numTensors, afterOne);
  });
});
