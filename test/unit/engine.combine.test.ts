// Combining adapters (server/engine/combine.ts): cat exact, linear and svd against ml-matrix's
// truncated SVD of the weighted ΔW, and what cannot be combined refused with the reason.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { Matrix, SingularValueDecomposition } from 'ml-matrix';
import { resolveAdapterSpec } from '../../kernels/adapter/spec';
import { selectBackend } from '../../kernels/backends/backend';
import { initAdapterWeights } from '../../kernels/adapter/init';
import { deltaWeight } from '../../kernels/adapter/merge';
import { combineAdapters, type CombineInput } from '../../server/engine/combine';
import { trainedAdapter } from '../helpers/adapters';
import { maxAbsDiff } from '../helpers/tensors';
import type { Adapter } from '../../kernels/adapter/linear';
import type { AdapterMethod } from '../../protocol/methods';

const D_OUT = 20;
const D_IN = 28;
const Q = 'model.layers.0.self_attn.q_proj';
const V = 'model.layers.0.self_attn.v_proj';

const adapter = (method: AdapterMethod, r: number, alpha: number, seed: number): Adapter => trainedAdapter(D_IN, D_OUT, { method, r, alpha, chainLength: 2 }, seed);

function weightedSum(inputs: CombineInput[], module: string): tf.Tensor2D {
  return tf.tidy(() =>
    tf.addN(
      inputs.filter((i) => i.adapters.has(module)).map((i) => {
        const { spec, weights } = i.adapters.get(module)!;
        return tf.mul(deltaWeight(spec, weights), i.weight);
      }),
    ),
  ) as tf.Tensor2D;
}

const inputs = (): CombineInput[] => [
  { adapters: new Map([[Q, adapter('lora', 4, 8, 1)], [V, adapter('lora', 4, 8, 2)]]), weight: 0.7 },
  { adapters: new Map([[Q, adapter('moslora', 3, 12, 3)]]), weight: 0.5 },
  { adapters: new Map([[Q, adapter('linchain', 2, 2, 5)]]), weight: -0.25 },
];

describe('combining adapters', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('cat is exact: ranks add up, mixers become block-diagonal, ΔW = Σ w_i ΔW_i', () => {
    const given = inputs();
    const { adapters, reports } = combineAdapters(given, 'cat');
    const q = adapters.get(Q)!;
    assert.equal(q.spec.r, 4 + 3 + 2);
    assert.equal(q.spec.method, 'moslora');
    const mixer = q.weights.mixers[0]!.arraySync();
    assert.equal(mixer[0]![5], 0, 'off-diagonal blocks are zero');
    assert.equal(mixer[0]![0], 1, 'a LoRA input gets an identity block');
    assert.ok(maxAbsDiff(deltaWeight(q.spec, q.weights), weightedSum(given, Q)) < 1e-5);
    const v = adapters.get(V)!;
    assert.equal(v.spec.method, 'moslora', 'one adapter, one method: a module only LoRA inputs adapt gets an identity mixer');
    assert.ok(maxAbsDiff(v.weights.mixers[0]!, tf.eye(4)) === 0);
    assert.ok(maxAbsDiff(deltaWeight(v.spec, v.weights), weightedSum(given, V)) < 1e-5);
    assert.deepEqual(reports.map((r) => r.relativeError), [0, 0]);
  });

  it('linear and svd equal the truncated SVD of the full weighted ΔW', () => {
    const given = inputs();
    const full = weightedSum(given, Q);
    const svd = new SingularValueDecomposition(new Matrix(full.arraySync()));
    for (const [method, rank] of [['linear', 4], ['svd', 2], ['svd', 7]] as const) {
      const { adapters, reports } = combineAdapters(given, method, { rank });
      const q = adapters.get(Q)!;
      assert.equal(q.spec.r, rank);
      const k = rank;
      const truncated = svd.leftSingularVectors
        .subMatrix(0, D_OUT - 1, 0, k - 1)
        .mmul(Matrix.diag(svd.diagonal.slice(0, k)))
        .mmul(svd.rightSingularVectors.subMatrix(0, D_IN - 1, 0, k - 1).transpose());
      const diff = maxAbsDiff(deltaWeight(q.spec, q.weights), tf.tensor2d(truncated.to2DArray()));
      assert.ok(diff < 1e-5, `${method} r=${rank}: ${diff}`);
      const sq = svd.diagonal.map((s) => s * s);
      const expectedError = Math.sqrt(sq.slice(k).reduce((a, b) => a + b, 0) / sq.reduce((a, b) => a + b, 0));
      const got = reports.find((r) => r.module === Q)!.relativeError;
      assert.ok(Math.abs(got - expectedError) < 1e-6, `relative error ${got} vs ${expectedError}`);
    }
  });

  it('svd at the total rank is exact', () => {
    const given = inputs();
    const q = combineAdapters(given, 'svd', { rank: 9 }).adapters.get(Q)!;
    assert.ok(maxAbsDiff(deltaWeight(q.spec, q.weights), weightedSum(given, Q)) < 1e-5);
  });

  it('refuses what cannot be combined, saying why', () => {
    assert.throws(() => combineAdapters(inputs().slice(0, 1), 'cat'), /needs at least two adapters, got 1/);
    assert.throws(() => combineAdapters(inputs(), 'svd'), /svd needs --rank/);
    const other: CombineInput = { adapters: new Map([[Q, { spec: resolveAdapterSpec({ method: 'lora', dIn: 8, dOut: 8, r: 2, alpha: 2 }), weights: initAdapterWeights(resolveAdapterSpec({ method: 'lora', dIn: 8, dOut: 8, r: 2, alpha: 2 }), 1) }]]), weight: 1 };
    assert.throws(() => combineAdapters([inputs()[0]!, other], 'cat'), /q_proj has different shapes across the adapters \(20×28, 8×8\)/);
  });
});
