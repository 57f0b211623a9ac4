// Models with adapters (server/models/model.ts, adapters from server/models/adapters.ts) on tiny
// random checkpoints: B = 0 gives the base model, gradients are finite and match finite
// differences, no tensor is left behind, gradient checkpointing, dropout, and checked inputs.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import type { Adapter } from '../../kernels/adapter/linear';
import { adaptersFor, disposeAdapters, makeTrainable } from '../../server/models/adapters';
import { moduleDropoutSeed } from '../../server/models/layers';
import { CausalLM, type EngineModel } from '../../server/models/model';
import { maxAbsDiff } from '../helpers/tensors';
import { TINY_GPT2_CONFIG, TINY_LLAMA_CONFIG, writeTinyModel } from '../helpers/tiny-models';

const IDS = [
  [3, 9, 4, 17, 5, 40, 11, 2],
  [1, 1, 30, 6, 22, 47, 13, 0],
];
const LABELS = [
  [-100, -100, 4, 17, 5, 40, 11, 2],
  [-100, 1, 30, 6, 22, 47, -100, -100],
];

const MOSLORA = { method: 'moslora' as const, r: 4, alpha: 8 };

function withB(adapter: Adapter, B: tf.Tensor2D): Adapter {
  return { spec: adapter.spec, weights: { ...adapter.weights, B } };
}

describe('models with adapters', () => {
  const models = new Map<string, CausalLM>();
  const dirs: string[] = [];
  before(async () => {
    await selectBackend('wasm');
    for (const [name, config] of Object.entries({ llama: TINY_LLAMA_CONFIG, gpt2: TINY_GPT2_CONFIG })) {
      const dir = await writeTinyModel(config, 3);
      dirs.push(dir);
      models.set(name, await CausalLM.load(dir));
    }
  });
  after(async () => {
    for (const model of models.values()) model.dispose();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('serves the training engine as an EngineModel', () => {
    const engine: EngineModel = models.get('llama')!;
    assert.equal(engine.linearModules.length, 15);
    tf.tidy(() => {
      const logits = engine.logits(IDS, new Map(), { training: false });
      assert.deepEqual(logits.shape, [2, 8, 48]);
    });
  });

  for (const name of ['llama', 'gpt2']) {
    it(`${name}: adapters on every linear module start at the base model (B = 0) and change it once B moves`, () => {
      const model = models.get(name)!;
      const { adapters, unmatched } = adaptersFor(model.linearModules, [...new Set(model.linearModules.map((m) => m.name.split('.').at(-1)!))], MOSLORA, 5);
      assert.deepEqual(unmatched, []);
      assert.equal(adapters.size, model.linearModules.length);
      tf.tidy(() => {
        const base = model.forward(IDS);
        assert.ok(maxAbsDiff(model.forward(IDS, { adapters }), base) === 0);
        const moved = new Map([...adapters].map(([module, a]) => [module, withB(a, tf.mul(tf.onesLike(a.weights.B), 0.05) as tf.Tensor2D)]));
        assert.ok(maxAbsDiff(model.forward(IDS, { adapters: moved }), base) > 1e-3);
      });
      disposeAdapters(adapters);
    });

    it(`${name}: the loss has finite gradients for a MoSLoRA adapter on wasm, zero for A and M while B = 0`, () => {
      const model = models.get(name)!;
      const target = model.linearModules[0]!.name; // q_proj or c_attn of layer 0
      const { adapters } = adaptersFor(model.linearModules, [target], MOSLORA, 11);
      const adapter = adapters.get(target)!;
      const { A, B, mixers } = adapter.weights;
      const M = mixers[0]!;
      const gradients = (b: tf.Tensor2D) =>
        tf.grads((a: tf.Tensor, bb: tf.Tensor, m: tf.Tensor) =>
          model.loss(IDS, LABELS, { adapters: new Map([[target, { spec: adapter.spec, weights: { A: a as tf.Tensor2D, B: bb as tf.Tensor2D, mixers: [m as tf.Tensor2D] } }]]) }),
        )([A, b, M]);
      tf.tidy(() => {
        // y = W·x + s·B·M·A·x: dL/dB = s·g·(M·A·x)ᵀ is non-zero, but dL/dA = s·Mᵀ·Bᵀ·g·xᵀ and
        // dL/dM = s·Bᵀ·g·(A·x)ᵀ both carry the factor B = 0: only B moves on the first step.
        const [dA, dB, dM] = gradients(B);
        for (const g of [dA!, dB!, dM!]) assert.ok(tf.all(tf.isFinite(g)).dataSync()[0] === 1);
        assert.ok(tf.max(tf.abs(dB!)).dataSync()[0]! > 1e-6, 'dL/dB is non-zero');
        assert.equal(tf.max(tf.abs(dA!)).dataSync()[0], 0);
        assert.equal(tf.max(tf.abs(dM!)).dataSync()[0], 0);
        // Once B has moved, A and M get gradients too.
        const [dA1, , dM1] = gradients(tf.mul(dB!, -1) as tf.Tensor2D);
        assert.ok(tf.max(tf.abs(dA1!)).dataSync()[0]! > 1e-7);
        assert.ok(tf.max(tf.abs(dM1!)).dataSync()[0]! > 1e-7);
      });
      disposeAdapters(adapters);
    });

    it(`${name}: dL/dB through the whole model agrees with finite differences`, () => {
      const model = models.get(name)!;
      const target = model.linearModules.at(-2)!.name; // the last MLP projection
      const { adapters } = adaptersFor(model.linearModules, [target], MOSLORA, 13);
      const adapter = adapters.get(target)!;
      const lossAt = (B: tf.Tensor2D) => model.loss(IDS, LABELS, { adapters: new Map([[target, withB(adapter, B)]]) });
      tf.tidy(() => {
        const B = tf.mul(tf.randomNormal(adapter.weights.B.shape, 0, 1, 'float32', 17), 0.1) as tf.Tensor2D;
        const dB = tf.grad((b: tf.Tensor) => lossAt(b as tf.Tensor2D))(B).dataSync();
        const values = B.dataSync();
        const eps = 1e-2;
        for (const i of [0, 5, values.length - 1]) {
          const shifted = (delta: number) => {
            const v = values.slice();
            v[i]! += delta;
            return lossAt(tf.tensor2d(v, B.shape)).dataSync()[0]!;
          };
          const numeric = (shifted(eps) - shifted(-eps)) / (2 * eps);
          assert.ok(Math.abs(numeric - dB[i]!) < 2e-3 + 0.02 * Math.abs(numeric), `element ${i}: analytic ${dB[i]} vs numeric ${numeric}`);
        }
      });
      disposeAdapters(adapters);
    });

    it(`${name}: repeated forward, loss and gradient passes leave no tensors behind`, () => {
      const model = models.get(name)!;
      const { adapters } = adaptersFor(model.linearModules, 'all-linear', { ...MOSLORA, dropout: 0.1 }, 21);
      const variables = [...makeTrainable(adapters).values()];
      const step = (seed: number) => {
        tf.dispose(model.forward(IDS, { adapters }));
        const { value, grads } = tf.variableGrads(() => model.loss(IDS, LABELS, { adapters, training: true, dropoutSeed: seed }), variables);
        tf.dispose([value, ...Object.values(grads)]);
      };
      step(0);
      const count = tf.memory().numTensors;
      for (let i = 1; i < 4; i++) step(i);
      assert.equal(tf.memory().numTensors, count);
      disposeAdapters(adapters);
    });
  }

  for (const name of ['llama', 'gpt2']) {
    it(`${name}: gradient checkpointing gives the same loss and gradients and keeps fewer tensors for the backward pass`, () => {
      const model = models.get(name)!;
      const { adapters } = adaptersFor(model.linearModules, 'all-linear', { ...MOSLORA, dropout: 0.1, bInit: 'kaiming' }, 23);
      const variables = [...makeTrainable(adapters).values()];
      const run = (checkpoint: boolean) => {
        let kept = 0;
        const { value, grads } = tf.variableGrads(() => {
          const loss = model.loss(IDS, LABELS, { adapters, training: true, dropoutSeed: 3, checkpoint });
          kept = tf.memory().numTensors;
          return loss;
        }, variables);
        return { value, grads, kept };
      };
      const before = tf.memory().numTensors;
      const plain = run(false);
      const checkpointed = run(true);
      assert.ok(Math.abs(plain.value.dataSync()[0]! - checkpointed.value.dataSync()[0]!) < 1e-6);
      const largest = (t: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(t)).dataSync()[0]!);
      for (const v of variables) {
        const [g, c] = [plain.grads[v.name]!, checkpointed.grads[v.name]!];
        assert.ok(maxAbsDiff(g, c) <= 1e-5 * Math.max(1, largest(g)), `${v.name}: gradients differ`);
      }
      assert.ok(largest(checkpointed.grads[variables[0]!.name]!) > 0, 'gradients reach the first layer');
      assert.ok(checkpointed.kept - before < (plain.kept - before) / 2, `tensors held by the tape: ${checkpointed.kept - before} checkpointed vs ${plain.kept - before}`);
      tf.dispose([plain.value, checkpointed.value, ...Object.values(plain.grads), ...Object.values(checkpointed.grads)]);
      assert.equal(tf.memory().numTensors, before, 'nothing left behind');
      disposeAdapters(adapters);
    });
  }

  it('training dropout repeats for a seed, differs across seeds and modules, and is off in eval', () => {
    const model = models.get('llama')!;
    const { adapters } = adaptersFor(model.linearModules, 'all-linear', { ...MOSLORA, dropout: 0.5, bInit: 'kaiming' }, 2);
    tf.tidy(() => {
      const run = (options: { training?: boolean; dropoutSeed?: number }) => model.forward(IDS, { adapters, ...options });
      assert.equal(maxAbsDiff(run({ training: true, dropoutSeed: 4 }), run({ training: true, dropoutSeed: 4 })), 0);
      assert.ok(maxAbsDiff(run({ training: true, dropoutSeed: 4 }), run({ training: true, dropoutSeed: 5 })) > 1e-4);
      assert.equal(maxAbsDiff(run({ dropoutSeed: 4 }), run({ dropoutSeed: 5 })), 0);
    });
    const seeds = new Set([0, 1, 2, 101].flatMap((call) => Array.from({ length: 561 }, (_, i) => moduleDropoutSeed(call, i))));
    assert.equal(seeds.size, 4 * 561, 'calls numbered 0, 1, 2, … never give two modules one seed');
    disposeAdapters(adapters);
  });

  it('refuses an adapter for a module the model does not have, naming the nearest', () => {
    const model = models.get('llama')!;
    const { adapters } = adaptersFor(model.linearModules, ['q_proj'], MOSLORA, 1);
    const misnamed = new Map([['model.layers.0.self_attn.qproj', adapters.get('model.layers.0.self_attn.q_proj')!]]);
    assert.throws(() => model.forward(IDS, { adapters: misnamed }), /no linear module "model\.layers\.0\.self_attn\.qproj"; nearest: "model\.layers\.0\.self_attn\.q_proj"/);
    assert.throws(() => adaptersFor(model.linearModules, ['c_attn'], MOSLORA, 1), /target_modules: \["c_attn"\] selects no linear module .* q_proj, k_proj/);
    disposeAdapters(adapters);
  });

  it('checks token ids and labels given as arrays', () => {
    const model = models.get('llama')!;
    assert.throws(() => model.forward([[1, 48]]), /input_ids\[0\]\[1\] = 48 is not a token id in \[0, 48\)/);
    assert.throws(() => model.forward([[1, 2], [3]]), /row 1 has 1 tokens but row 0 has 2/);
    assert.throws(() => model.loss([[1, 2]], [[1, -100]]), /every label after the first position is -100/);
    assert.throws(() => model.loss([[1, 2, 3]], [[1, 2]]), /labels: shape \[1, 2\] does not match input_ids \[1, 3\]/);
  });
});
