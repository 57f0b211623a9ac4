// AdamW, the learning-rate schedules and global-norm clipping (server/engine/optim.ts), against
// AdamW by hand in float64 as torch.optim.AdamW writes it and Hugging Face's schedules.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { AdamW, clipByGlobalNorm, flatConcat, scheduleFactor } from '../../server/engine/optim';

/** AdamW by hand in float64, exactly as torch.optim.AdamW writes it. */
function handAdamW(p0: number[], grads: number[][], lrs: number[], wd: number): number[] {
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, step) => {
    const t = step + 1;
    for (let i = 0; i < p.length; i++) {
      p[i]! *= 1 - lrs[step]! * wd;
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! ** 2;
      const mHat = m[i]! / (1 - b1 ** t);
      const vHat = v[i]! / (1 - b2 ** t);
      p[i]! -= (lrs[step]! * mHat) / (Math.sqrt(vHat) + eps);
    }
  });
  return p;
}

describe('AdamW', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('matches hand-computed decoupled-decay, bias-corrected steps', () => {
    const p0 = [0.5, -1.25, 2, 0.01];
    const grads = [
      [0.1, -0.2, 0.3, 0],
      [-0.05, 0.4, 0.1, 1e-4],
      [0.2, 0.2, -0.3, -0.5],
    ];
    const lrs = [1e-2, 5e-3, 2e-2];
    const param = tf.variable(tf.tensor(p0));
    const optimizer = new AdamW({ weightDecay: 0.1 });
    grads.forEach((g, step) => optimizer.apply(new Map([['w', param]]), tf.tensor1d(g), lrs[step]!));
    const expected = handAdamW(p0, grads, lrs, 0.1);
    param.dataSync().forEach((value, i) => assert.ok(Math.abs(value - expected[i]!) < 1e-6, `p[${i}] = ${value}, by hand ${expected[i]}`));
    assert.equal(optimizer.step, 3);
    const withoutDecay = handAdamW(p0, grads, lrs, 0);
    assert.ok(Math.abs(expected[2]! - withoutDecay[2]!) > 1e-4, 'weight decay is not a no-op in this test');
  });

  it('updates all parameters at once with the same float32 results, to the bit, as one update per parameter, in a fixed number of kernels', async () => {
    const shapes: Record<string, number[]> = { 'q.lora_A': [4, 6], 'q.lora_B': [6, 4], 'q.lora_AB': [4, 4], 'v.lora_A': [4, 6], 'v.lora_B': [3, 4] };
    const seeded = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
    const make = () => new Map(Object.entries(shapes).map(([name, shape], i) => [name, tf.variable(seeded(shape, 10 + i))]));
    const [flat, perParameter] = [make(), make()];
    const optimizer = new AdamW({ weightDecay: 0.01 });
    const moments = new Map([...perParameter].map(([name, p]) => [name, { m: tf.zerosLike(p), v: tf.zerosLike(p) }]));
    for (let step = 1; step <= 3; step++) {
      const grads = new Map(Object.entries(shapes).map(([name, shape], i) => [name, seeded(shape, 100 * step + i)]));
      const grad = flatConcat([...grads.values()]);
      const lr = 1e-2 / step;
      const before = tf.memory().numTensors;
      const { kernels } = await tf.profile(() => optimizer.apply(flat, grad, lr));
      // after the first step, which lays the moments out (2 new tensors): a fixed number of
      // computing kernels (reshapes only relabel), not 14 per parameter, and nothing left behind
      if (step > 1) {
        const computing = kernels.filter((k) => k.name !== 'Reshape').map((k) => k.name);
        assert.ok(computing.length <= 20, `${computing.length} kernels for one update of 5 parameters: ${computing.join(' ')}`);
        assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
      }
      // the update as it was written per parameter (torch.optim.AdamW's order of operations)
      for (const [name, p] of perParameter) {
        const g = grads.get(name)!;
        const moment = moments.get(name)!;
        moment.m = tf.add(tf.mul(moment.m, 0.9), tf.mul(g, 1 - 0.9));
        moment.v = tf.add(tf.mul(moment.v, 0.999), tf.mul(tf.square(g), 1 - 0.999));
        const update = tf.div(tf.div(moment.m, 1 - 0.9 ** step), tf.add(tf.sqrt(tf.div(moment.v, 1 - 0.999 ** step)), 1e-8));
        p.assign(tf.sub(tf.mul(p, 1 - lr * 0.01), tf.mul(update, lr)));
      }
    }
    for (const [name, p] of flat) assert.deepEqual(p.dataSync(), perParameter.get(name)!.dataSync(), name);
    optimizer.dispose();
  });

  it('keys moments by name: saved state restores into a fresh optimizer and continues identically', async () => {
    const run = async (restoreAfter: number | null) => {
      const a = tf.variable(tf.tensor([1, 2, 3]));
      const b = tf.variable(tf.tensor([[0.5, -0.5]]));
      let optimizer = new AdamW({ weightDecay: 0.01 });
      for (let step = 0; step < 4; step++) {
        if (step === restoreAfter) {
          const state = await optimizer.getState();
          optimizer.dispose();
          optimizer = new AdamW({ weightDecay: 0.01 });
          optimizer.setState(state);
        }
        // The parameter order changes between calls, and the flat gradient's with it; names
        // keep the moments straight.
        const params = step % 2 ? new Map([['b', b], ['a', a]]) : new Map([['a', a], ['b', b]]);
        const grads = new Map<string, tf.Tensor>([['a', tf.mul(a, 0.3)], ['b', tf.sub(b, 1)]]);
        optimizer.apply(params, flatConcat([...params.keys()].map((name) => grads.get(name)!)), 0.05);
      }
      return [...a.dataSync(), ...b.dataSync()];
    };
    assert.deepEqual(await run(2), await run(null));
  });

  it('applyClipped updates with the gradient clipped to max_norm, returns the norm before, and keeps the caller\'s gradient', async () => {
    const make = () => new Map<string, tf.Variable>([['a', tf.variable(tf.tensor1d([1, 2]))], ['b', tf.variable(tf.tensor2d([[3]]))]]);
    const [clippedParams, byHand] = [make(), make()];
    const grad = tf.tensor1d([6, 0, 8]);
    const [clipping, plain] = [new AdamW({ weightDecay: 0.1 }), new AdamW({ weightDecay: 0.1 })];
    // AdamW's first step is scale-free (m̂/√v̂ = sign), so two steps with different gradients
    for (const [step, lr, g] of [[1, 0.1, grad], [2, 0.05, tf.tensor1d([-1, 3, 2])]] as const) {
      const norm = Math.hypot(...g.dataSync());
      const before = tf.memory().numTensors;
      assert.ok(Math.abs((await clipping.applyClipped(clippedParams, g, lr, 1)) - norm) < 1e-5);
      // (the first step lays out the two moment vectors)
      assert.equal(tf.memory().numTensors, before + (step === 1 ? 2 : 0), 'no tensor left behind');
      assert.ok(!g.isDisposed, 'the caller\'s gradient is not disposed');
      plain.apply(byHand, tf.mul(g, 1 / (norm + 1e-6)) as tf.Tensor1D, lr);
    }
    for (const [name, p] of clippedParams) {
      const expected = byHand.get(name)!.dataSync();
      p.dataSync().forEach((value, i) => assert.ok(Math.abs(value - expected[i]!) < 1e-6, `${name}[${i}] = ${value}, by hand ${expected[i]}`));
    }
  });

  it('refuses a gradient that does not cover the parameters, with both sizes', () => {
    const params = new Map([['lora_A', tf.variable(tf.zeros([2, 3]))], ['lora_B', tf.variable(tf.zeros([4]))]]);
    assert.throws(() => new AdamW().apply(params, tf.zeros([6]) as tf.Tensor1D, 1e-3), /gradient has shape \[6\]; the 2 parameters flattened have 10 values/);
  });
});

describe('learning-rate schedules (Hugging Face semantics)', () => {
  it('linear warmup from 0, then linear decay to 0 at the last step', () => {
    assert.equal(scheduleFactor('linear', 0, 10, 110), 0);
    assert.equal(scheduleFactor('linear', 5, 10, 110), 0.5);
    assert.equal(scheduleFactor('linear', 10, 10, 110), 1);
    assert.equal(scheduleFactor('linear', 60, 10, 110), 0.5);
    assert.equal(scheduleFactor('linear', 110, 10, 110), 0);
    assert.equal(scheduleFactor('linear', 200, 10, 110), 0);
  });

  it('cosine decays by half a period; constant stays at the peak after warmup', () => {
    assert.equal(scheduleFactor('cosine', 10, 10, 110), 1);
    assert.ok(Math.abs(scheduleFactor('cosine', 60, 10, 110) - 0.5) < 1e-12);
    assert.ok(Math.abs(scheduleFactor('cosine', 35, 10, 110) - (0.5 * (1 + Math.cos(Math.PI / 4)))) < 1e-12);
    assert.ok(scheduleFactor('cosine', 110, 10, 110) < 1e-12);
    assert.equal(scheduleFactor('constant', 3, 4, 100), 0.75);
    assert.equal(scheduleFactor('constant', 99, 4, 100), 1);
  });

  it('no warmup starts at the peak', () => {
    assert.equal(scheduleFactor('linear', 0, 0, 50), 1);
  });
});

describe('global-norm clipping', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('reports the norm of all the parameters\' gradients and scales them by max_norm / (norm + 1e-6) when above it', async () => {
    const grad = flatConcat([tf.tensor([3, 0]), tf.tensor([[0, 4]])]);
    const { norm, grad: clipped } = await clipByGlobalNorm(grad, 1);
    assert.ok(Math.abs(norm - 5) < 1e-6);
    const scale = 1 / (5 + 1e-6);
    const values = clipped.dataSync();
    assert.ok(Math.abs(values[0]! - 3 * scale) < 1e-7);
    assert.ok(Math.abs(values[3]! - 4 * scale) < 1e-7);
  });

  it('leaves gradients under the limit, or with no limit, untouched', async () => {
    const grad = tf.tensor1d([0.3, 0.4]);
    assert.equal((await clipByGlobalNorm(grad, 1)).grad, grad);
    assert.equal((await clipByGlobalNorm(tf.tensor1d([30, 40]), undefined)).grad.dataSync()[0], 30);
  });
});
