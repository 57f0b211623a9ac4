// The adapter's initialisers (kernels/adapter/init.ts): the distributions PEFT and the reference
// MoSLoRA code draw, orthogonal and identity mixers, and one draw per seed.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { resolveAdapterSpec, type AdapterSpec } from '../../kernels/adapter/spec';
import { selectBackend } from '../../kernels/backends/backend';
import { initAdapterWeights } from '../../kernels/adapter/init';
import { maxAbsDiff } from '../helpers/tensors';

const spec = (extra: Partial<AdapterSpec> = {}) =>
  resolveAdapterSpec({ method: 'moslora', dIn: 256, dOut: 128, r: 16, alpha: 32, ...extra });

function std(values: ArrayLike<number>): number {
  const xs = Array.from(values);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
}

describe('adapter initialisers', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('A is kaiming-uniform (a=√5) as PEFT: U(±1/√d_in); B starts at zero', () => {
    const { A, B } = initAdapterWeights(spec(), 7);
    const a = A.dataSync();
    const bound = 1 / Math.sqrt(256);
    assert.ok(a.every((v) => Math.abs(v) <= bound), 'inside the bound');
    assert.ok(Math.abs(std(a) - bound / Math.sqrt(3)) < 0.05 * (bound / Math.sqrt(3)), `std ${std(a)} of a uniform on ±${bound}`);
    assert.ok(B.dataSync().every((v) => v === 0));
  });

  it('the kaiming mixer is U(±1/√r), as the reference MoSLoRA code', () => {
    const [m] = initAdapterWeights(spec(), 3).mixers;
    const values = m!.dataSync();
    assert.ok(values.every((v) => Math.abs(v) <= 1 / 4));
    assert.ok(std(values) > 0.1, 'not degenerate');
  });

  it('the orthogonal mixer satisfies MᵀM = I; the identity mixer is I', () => {
    const [m] = initAdapterWeights(spec({ mixerInit: 'orthogonal' }), 5).mixers;
    assert.ok(maxAbsDiff(tf.matMul(m!, m!, true, false), tf.eye(16)) < 1e-5);
    const [i] = initAdapterWeights(spec({ mixerInit: 'identity' }), 5).mixers;
    assert.ok(maxAbsDiff(i!, tf.eye(16)) === 0);
  });

  it('is reproducible per seed and different across seeds; one mixer per chain link', () => {
    const a = initAdapterWeights(spec({ method: 'linchain', chainLength: 3 }), 9);
    const b = initAdapterWeights(spec({ method: 'linchain', chainLength: 3 }), 9);
    const c = initAdapterWeights(spec({ method: 'linchain', chainLength: 3 }), 10);
    assert.equal(a.mixers.length, 3);
    assert.equal(maxAbsDiff(a.A, b.A), 0);
    assert.equal(maxAbsDiff(a.mixers[2]!, b.mixers[2]!), 0);
    assert.ok(maxAbsDiff(a.A, c.A) > 0);
    assert.ok(maxAbsDiff(a.mixers[0]!, a.mixers[1]!) > 0, 'links are initialised independently');
    assert.equal(initAdapterWeights(spec({ method: 'lora' }), 1).mixers.length, 0);
    // tfjs reads seed 0 as "unseeded"; ours must still be reproducible.
    assert.equal(maxAbsDiff(initAdapterWeights(spec(), 0).A, initAdapterWeights(spec(), 0).A), 0, 'seed 0 is a seed');
  });
});
