// DoRA (use_dora) in the adapted linear layer, against PEFT's formula computed here in float64:
//
//   y = x·Wᵀ + b + (f − 1) ⊙ (x_d·Wᵀ) + f ⊙ (x_d·ΔWᵀ),   f = m / ‖W + ΔW‖,  x_d = dropout(x) (or x)
//
// (PEFT's DoraLinearVariant.forward and DoraLinearLayer.forward), the norm per output feature and a
// constant in the backward pass: the gradients are checked against finite differences of that
// formula with the norm held at its value.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { adapterScaling, mixersTrainable, resolveAdapterSpec, trainableParameterCount } from '../../kernels/adapter/spec';
import { ADAPTER_METHODS, type AdapterMethod } from '../../protocol/methods';
import { selectBackend } from '../../kernels/backends/backend';
import type { AdapterWeights } from '../../kernels/adapter/init';
import { dropoutMaskAttrs, dropoutMaskValues } from '../../kernels/adapter/dropout';
import { adaptedLinear, doraWeightNorms, weightNormsSquared, type Adapter, type TensorBaseLinear } from '../../kernels/adapter/linear';
import { mergeWeight, unmergeWeight } from '../../kernels/adapter/merge';
import { seededAdapter } from '../helpers/adapters';
import { maxAbsDiff, seeded } from '../helpers/tensors';

const N = 3;
const D_IN = 5;
const D_OUT = 4;
const R = 2;
const DROPOUT_SEED = 42;

function makeAdapter(method: AdapterMethod, seed: number, dropout = 0): Adapter {
  return seededAdapter(resolveAdapterSpec({ method, dIn: D_IN, dOut: D_OUT, r: R, alpha: 3, chainLength: 3, dropout, useDora: true }), seed);
}

function makeBase(layout: TensorBaseLinear['layout'], seed: number, bias = true): TensorBaseLinear {
  const shape: [number, number] = layout === 'out_in' ? [D_OUT, D_IN] : [D_IN, D_OUT];
  return { weight: seeded(shape, seed) as tf.Tensor2D, ...(bias ? { bias: seeded([D_OUT], seed + 9) as tf.Tensor1D } : {}), layout };
}

type Matrix = number[][];

const rows = (t: tf.Tensor, cols: number): Matrix => {
  const values = Array.from(t.dataSync());
  return Array.from({ length: values.length / cols }, (_, i) => values.slice(i * cols, (i + 1) * cols));
};
const product = (a: Matrix, b: Matrix): Matrix => a.map((row) => b[0]!.map((_, j) => row.reduce((acc, v, k) => acc + v * b[k]![j]!, 0)));
const transpose = (a: Matrix): Matrix => a[0]!.map((_, j) => a.map((row) => row[j]!));

/** The layer's tensors as float64 arrays: W [d_out, d_in] whatever its layout. */
interface Plain {
  x: Matrix;
  w: Matrix;
  b: number[];
  A: Matrix;
  B: Matrix;
  mixers: Matrix[];
  m: number[];
}

function plain(x: tf.Tensor, base: TensorBaseLinear, weights: AdapterWeights): Plain {
  const w = base.layout === 'out_in' ? rows(base.weight, D_IN) : transpose(rows(base.weight, D_OUT));
  return {
    x: rows(x, D_IN),
    w,
    b: base.bias ? Array.from(base.bias.dataSync()) : Array(D_OUT).fill(0),
    A: rows(weights.A, D_IN),
    B: rows(weights.B, R),
    mixers: weights.mixers.map((m) => rows(m, R)),
    m: Array.from(weights.magnitude!.dataSync()),
  };
}

/** ΔW = s·B·M_k···M_1·A, [d_out, d_in]. */
function delta(p: Plain, s: number): Matrix {
  const folded = p.mixers.reduce((a, m) => product(m, a), p.A);
  return product(p.B, folded).map((row) => row.map((v) => s * v));
}

/** ‖W_o + ΔW_o‖ per output feature. */
function norms(p: Plain, s: number): number[] {
  const d = delta(p, s);
  return p.w.map((row, o) => Math.sqrt(row.reduce((acc, v, i) => acc + (v + d[o]![i]!) ** 2, 0)));
}

/** PEFT's DoRA layer in float64; `frozen` gives the norms (their value, not their gradient). */
function handDora(p: Plain, s: number, mask: number[] | null, frozen: number[]): Matrix {
  const d = delta(p, s);
  return p.x.map((xRow, n) => {
    const xd = mask ? xRow.map((v, i) => v * mask[n * D_IN + i]!) : xRow;
    return p.w.map((wRow, o) => {
      const f = p.m[o]! / frozen[o]!;
      const base = xRow.reduce((acc, v, i) => acc + v * wRow[i]!, 0);
      const dropped = xd.reduce((acc, v, i) => acc + v * wRow[i]!, 0);
      const adapter = xd.reduce((acc, v, i) => acc + v * d[o]![i]!, 0);
      return base + p.b[o]! + (f - 1) * dropped + f * adapter;
    });
  });
}

// A non-polynomial loss, so that differences are not exact by accident.
const lossOf = (y: Matrix, g: Matrix) => y.reduce((acc, row, n) => acc + row.reduce((a, v, o) => a + Math.sin(v) * g[n]![o]!, 0), 0);

function maskOf(rate: number): number[] | null {
  return rate > 0 ? Array.from(dropoutMaskValues(dropoutMaskAttrs([N, D_IN], 1, rate, DROPOUT_SEED, 0))) : null;
}

/** The float64 gradient of the loss with respect to one of Plain's entries, by central differences with the norms held. */
function numericGradient(p: Plain, s: number, mask: number[] | null, g: Matrix, key: 'x' | 'A' | 'B' | 'm' | `M${number}`): number[] {
  const frozen = norms(p, s);
  const read = (q: Plain): number[] => (key === 'm' ? q.m : key.startsWith('M') ? q.mixers[Number(key.slice(1))]! : q[key as 'x' | 'A' | 'B']).flat();
  const write = (q: Plain, values: number[]): Plain => {
    const reshape = (like: Matrix) => like.map((row, i) => values.slice(i * row.length, (i + 1) * row.length));
    if (key === 'm') return { ...q, m: values };
    if (key.startsWith('M')) return { ...q, mixers: q.mixers.map((m, i) => (i === Number(key.slice(1)) ? reshape(m) : m)) };
    return { ...q, [key]: reshape(q[key as 'x' | 'A' | 'B']) };
  };
  const values = read(p);
  const eps = 1e-6;
  return values.map((_, i) => {
    const at = (delta: number) => lossOf(handDora(write(p, values.map((v, j) => (j === i ? v + delta : v))), s, mask, frozen), g);
    return (at(eps) - at(-eps)) / (2 * eps);
  });
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tolerance = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const scale = Math.max(1, ...Array.from(expected, Math.abs));
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance * scale, `${what}[${i}]: ${actual[i]} vs the float64 reference ${expected[i]}`);
  }
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`DoRA in adaptedLinear on ${backend}`, () => {
    before(async () => {
      await selectBackend(backend);
    });

    for (const method of ADAPTER_METHODS) {
      for (const layout of ['out_in', 'in_out'] as const) {
        for (const dropout of [0, 0.3]) {
          it(`${method}, base ${layout}, dropout ${dropout}: the value is PEFT's and the gradients of x, A, B, the mixers and m match finite differences with the norm held`, () => {
            const adapter = makeAdapter(method, 11, dropout);
            const base = makeBase(layout, 3);
            const x = seeded([N, D_IN], 5);
            const g = seeded([N, D_OUT], 7);
            const s = adapterScaling(adapter.spec);
            const mask = maskOf(dropout);
            const p = plain(x, base, adapter.weights);
            const options = { training: true, dropoutSeed: DROPOUT_SEED };
            expectClose(adaptedLinear(x, base, adapter, options).dataSync(), handDora(p, s, mask, norms(p, s)).flat(), `${method}/${layout} y`, 1e-5);

            const learned = mixersTrainable(adapter.spec);
            const names = ['x', 'A', 'B', ...(learned ? adapter.weights.mixers.map((_, i) => `M${i}`) : []), 'm'];
            const f = (...values: tf.Tensor[]): tf.Scalar => {
              const [xIn, A, B, ...rest] = values;
              const magnitude = rest.pop() as tf.Tensor1D;
              const weights: AdapterWeights = { A: A as tf.Tensor2D, B: B as tf.Tensor2D, mixers: learned ? (rest as tf.Tensor2D[]) : adapter.weights.mixers, magnitude };
              return tf.sum(tf.mul(tf.sin(adaptedLinear(xIn!, base, { spec: adapter.spec, weights }, options)), g));
            };
            const analytic = tf.grads(f)([x, adapter.weights.A, adapter.weights.B, ...(learned ? adapter.weights.mixers : []), adapter.weights.magnitude!]);
            const gPlain = rows(g, D_OUT);
            names.forEach((name, i) => {
              const values = analytic[i]!.dataSync();
              expectClose(values, numericGradient(p, s, mask, gPlain, name as 'x'), `${method}/${layout}/${name}`);
              assert.ok(values.some((v) => Math.abs(v) > 1e-3), `${name}: the gradient should not vanish`);
            });
          });
        }
      }
    }

    it('evaluation (no dropout) is f ⊙ (x·(W + ΔW)ᵀ) + b, the bias not scaled', () => {
      for (const layout of ['out_in', 'in_out'] as const) {
        const adapter = makeAdapter('moslora', 21, 0.3);
        const base = makeBase(layout, 4);
        const x = seeded([N, D_IN], 8);
        const p = plain(x, base, adapter.weights);
        const s = adapterScaling(adapter.spec);
        expectClose(adaptedLinear(x, base, adapter, { training: false }).dataSync(), handDora(p, s, null, norms(p, s)).flat(), `${layout} y`, 1e-5);
      }
    });

    it('doraWeightNorms equals ‖W + ΔW‖ per output feature without forming W + ΔW, from the weight or from the norms a model keeps', () => {
      for (const layout of ['out_in', 'in_out'] as const) {
        for (const method of ADAPTER_METHODS) {
          const adapter = makeAdapter(method, 31);
          const base = makeBase(layout, 5);
          const p = plain(seeded([N, D_IN], 1), base, adapter.weights);
          const expected = norms(p, adapterScaling(adapter.spec));
          expectClose(doraWeightNorms(base, adapter.spec, adapter.weights).dataSync(), expected, `${method}/${layout} norms`, 1e-6);
          const kept: TensorBaseLinear = { ...base, weightNormsSquared: weightNormsSquared(base) };
          expectClose(doraWeightNorms(kept, adapter.spec, adapter.weights).dataSync(), expected, `${method}/${layout} norms from kept ‖W‖²`, 1e-6);
        }
      }
    });

    it("reads the norms a model keeps rather than the weight, and an adapter's fixed norms (generation) rather than computing them", () => {
      const adapter = makeAdapter('lora', 35);
      const base = makeBase('out_in', 6);
      const x = seeded([N, D_IN], 2);
      const wrong: TensorBaseLinear = { ...base, weightNormsSquared: tf.mul(weightNormsSquared(base), 4) as tf.Tensor1D };
      assert.ok(maxAbsDiff(adaptedLinear(x, wrong, adapter), adaptedLinear(x, base, adapter)) > 1e-3);
      const norms = doraWeightNorms(base, adapter.spec, adapter.weights);
      assert.equal(maxAbsDiff(adaptedLinear(x, base, { ...adapter, fixedNorms: norms }), adaptedLinear(x, base, adapter)), 0);
      assert.ok(maxAbsDiff(adaptedLinear(x, base, { ...adapter, fixedNorms: tf.mul(norms, 2) as tf.Tensor1D }), adaptedLinear(x, base, adapter)) > 1e-3);
    });

    it('with m at the norms of W + ΔW (how a DoRA adapter starts), the layer is the same method without DoRA', () => {
      for (const method of ADAPTER_METHODS) {
        const adapter = makeAdapter(method, 41);
        const base = makeBase('in_out', 7);
        const x = seeded([N, D_IN], 3);
        const started: Adapter = { ...adapter, weights: { ...adapter.weights, magnitude: doraWeightNorms(base, adapter.spec, adapter.weights) } };
        const plainSpec = resolveAdapterSpec({ ...adapter.spec, useDora: false });
        const { magnitude: _, ...factors } = adapter.weights;
        assert.ok(maxAbsDiff(adaptedLinear(x, base, started), adaptedLinear(x, base, { spec: plainSpec, weights: factors })) < 1e-5, method);
        assert.ok(maxAbsDiff(adaptedLinear(x, base, adapter), adaptedLinear(x, base, { spec: plainSpec, weights: factors })) > 1e-3, `${method}: m ≠ ‖W + ΔW‖ changes the layer`);
      }
    });

    it('counts the magnitude (d_out) among the trainable parameters', () => {
      const spec = resolveAdapterSpec({ method: 'moslora', dIn: 10, dOut: 6, r: 2, alpha: 4, useDora: true });
      assert.equal(trainableParameterCount(spec), 2 * (10 + 6) + 2 * 2 + 6);
      assert.equal(trainableParameterCount(resolveAdapterSpec({ ...spec, useDora: false })), 2 * (10 + 6) + 2 * 2);
    });

    it('refuses a DoRA adapter without its magnitude, a magnitude without use_dora, and a magnitude of the wrong size', () => {
      const adapter = makeAdapter('lora', 51);
      const base = makeBase('out_in', 8);
      const x = seeded([N, D_IN], 4);
      const { magnitude, ...factors } = adapter.weights;
      assert.throws(() => adaptedLinear(x, base, { spec: adapter.spec, weights: factors }), /magnitude: a DoRA adapter \(use_dora\) needs its magnitude vector m \[d_out\]/);
      assert.throws(() => adaptedLinear(x, base, { spec: resolveAdapterSpec({ ...adapter.spec, useDora: false }), weights: { ...factors, magnitude } }), /magnitude: a magnitude vector belongs to a DoRA adapter/);
      assert.throws(() => adaptedLinear(x, base, { spec: adapter.spec, weights: { ...factors, magnitude: tf.ones([D_IN]) as tf.Tensor1D } }), /magnitude: shape \[5\] does not match the expected \[4\]/);
    });
  });
}

describe('DoRA merge and unmerge', () => {
  const D = 48;
  const RANK = 6;
  before(async () => {
    await selectBackend('wasm');
  });

  function trained(method: AdapterMethod, seed: number): Adapter {
    return seededAdapter(resolveAdapterSpec({ method, dIn: D, dOut: D + 8, r: RANK, alpha: 12, chainLength: 3, useDora: true }), seed, 0.3);
  }

  for (const method of ADAPTER_METHODS) {
    for (const layout of ['out_in', 'in_out'] as const) {
      it(`${method}, ${layout}, with bias: the merged layer equals the adapted layer, and unmerge with the norms from before restores W`, async () => {
        const adapter = trained(method, 3);
        const shape: [number, number] = layout === 'out_in' ? [D + 8, D] : [D, D + 8];
        const layer: TensorBaseLinear = { weight: seeded(shape, 7, 0.2) as tf.Tensor2D, bias: seeded([D + 8], 8) as tf.Tensor1D, layout };
        const x = seeded([16, D], 11);
        const merged: TensorBaseLinear = { ...layer, weight: await mergeWeight(layer, adapter.spec, adapter.weights) };
        const diff = maxAbsDiff(adaptedLinear(x, merged, null), adaptedLinear(x, layer, adapter));
        assert.ok(diff < 1e-5, `merged vs adapter: max abs diff ${diff}`);
        const norms = doraWeightNorms(layer, adapter.spec, adapter.weights);
        const restored = await unmergeWeight(merged, adapter.spec, adapter.weights, 'q_proj', norms);
        assert.ok(maxAbsDiff(restored, layer.weight) < 1e-5, 'unmerge restores W');
        await assert.rejects(unmergeWeight(merged, adapter.spec, adapter.weights, 'q_proj'), /q_proj: unmerging a DoRA adapter needs ‖W \+ ΔW‖ of the weight it was merged into/);
      });
    }
  }

  it('the merged weight\'s norms are the magnitudes', async () => {
    const adapter = trained('moslora', 13);
    const layer: TensorBaseLinear = { weight: seeded([D + 8, D], 9, 0.2) as tf.Tensor2D, layout: 'out_in' };
    const merged = await mergeWeight(layer, adapter.spec, adapter.weights);
    assert.ok(maxAbsDiff(tf.norm(merged, 'euclidean', 1), adapter.weights.magnitude!) < 1e-5);
  });
});
