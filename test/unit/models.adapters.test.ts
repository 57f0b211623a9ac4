// The adapter factory (server/models/adapters.ts): which modules target_modules selects, and
// adapters whose every tensor draws its own random stream, independent across run seeds,
// modules and mixers, whatever the model's size.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { doraWeightNorms, type BaseLinear } from '../../kernels/adapter/linear';
import { adaptersFor, createAdapters, disposeAdapters, makeTrainable, selectModules, tensorSeed } from '../../server/models/adapters';
import { linearModule } from '../helpers/modules';
import { maxAbsDiff, seeded } from '../helpers/tensors';

/** An 8B Llama's adapted modules: 32 layers × 7 projections = 224. */
function llama8bModules() {
  const modules = [];
  for (let layer = 0; layer < 32; layer++) {
    for (const [name, dIn, dOut] of [['self_attn.q_proj', 4096, 4096], ['self_attn.k_proj', 4096, 1024], ['self_attn.v_proj', 4096, 1024], ['self_attn.o_proj', 4096, 4096], ['mlp.gate_proj', 4096, 14336], ['mlp.up_proj', 4096, 14336], ['mlp.down_proj', 14336, 4096]] as const) {
      modules.push(linearModule(`model.layers.${layer}.${name}`, dIn, dOut));
    }
  }
  return modules;
}

before(async () => {
  await selectBackend('cpu');
});

describe('adapter seeds', () => {
  it('no two tensors share a seed across run seeds, modules and a chain of 8 mixers', () => {
    const tensors = ['lora_A', 'lora_B', ...Array.from({ length: 8 }, (_, i) => `lora_AB.${i}`)];
    const seen = new Map<number, string>();
    for (let seed = 0; seed < 10; seed++) {
      for (const { name } of llama8bModules()) {
        for (const tensor of tensors) {
          const value = tensorSeed(seed, name, tensor);
          const where = `seed ${seed}, ${name}, ${tensor}`;
          assert.ok(!seen.has(value), `${where} draws the stream of ${seen.get(value)}`);
          seen.set(value, where);
        }
      }
    }
    assert.equal(seen.size, 10 * 224 * 10);
  });

  it('a tensor seed depends on the run seed, the module and the tensor, and on nothing else', () => {
    const q = 'model.layers.0.self_attn.q_proj';
    assert.equal(tensorSeed(3, q, 'lora_A'), tensorSeed(3, q, 'lora_A'));
    assert.ok(Number.isSafeInteger(tensorSeed(3, q, 'lora_A')));
    assert.notEqual(tensorSeed(3, q, 'lora_A'), tensorSeed(4, q, 'lora_A'));
    assert.notEqual(tensorSeed(3, q, 'lora_A'), tensorSeed(3, 'model.layers.1.self_attn.q_proj', 'lora_A'));
    assert.notEqual(tensorSeed(3, q, 'lora_A'), tensorSeed(3, q, 'lora_B'));
  });

  it("a module's adapter is the same whichever other modules are adapted", async () => {
    const modules = [linearModule('a.q_proj', 16, 16), linearModule('a.v_proj', 16, 16)];
    const template = { method: 'moslora' as const, r: 4, alpha: 8, bInit: 'kaiming' as const };
    const both = createAdapters(modules, template, 5);
    const alone = createAdapters(modules.slice(1), template, 5);
    const [x, y] = [both.get('a.v_proj')!.weights, alone.get('a.v_proj')!.weights];
    for (const [u, v] of [[x.A, y.A], [x.B, y.B], [x.mixers[0]!, y.mixers[0]!]] as const) assert.deepEqual(await u.data(), await v.data());
    disposeAdapters(both);
    disposeAdapters(alone);
  });

  it('runs with neighbouring seeds start from different adapters', async () => {
    const modules = [linearModule('a.q_proj', 16, 16)];
    const template = { method: 'moslora' as const, r: 4, alpha: 8 };
    const [one, two] = [createAdapters(modules, template, 1), createAdapters(modules, template, 2)];
    assert.notDeepEqual(await one.get('a.q_proj')!.weights.A.data(), await two.get('a.q_proj')!.weights.A.data());
    disposeAdapters(one);
    disposeAdapters(two);
  });
});

describe('the adapter factory', () => {
  const modules = [linearModule('model.layers.0.self_attn.q_proj', 8, 8), linearModule('model.layers.0.mlp.up_proj', 8, 16), linearModule('lm_head', 8, 32)];

  it('selects modules in the model order and lists the entries that selected nothing', () => {
    const { selected, unmatched } = selectModules(modules, ['up_proj', 'q_proj', 'w_in']);
    assert.deepEqual(selected.map((m) => m.name), ['model.layers.0.self_attn.q_proj', 'model.layers.0.mlp.up_proj']);
    assert.deepEqual(unmatched, ['w_in']);
  });

  it('takes saved weights where a checkpoint has them', () => {
    const template = { method: 'lora' as const, r: 2, alpha: 2 };
    const saved = createAdapters(modules.slice(0, 1), template, 9);
    const restored = createAdapters(modules.slice(0, 2), template, 1, saved);
    assert.equal(restored.get('model.layers.0.self_attn.q_proj')!.weights, saved.get('model.layers.0.self_attn.q_proj')!.weights);
    assert.notEqual(restored.get('model.layers.0.mlp.up_proj')!.weights, undefined);
    disposeAdapters(restored);
  });

  it('refuses targets that select no module, naming what the modules are called', () => {
    assert.throws(() => adaptersFor(modules, ['c_attn'], { method: 'lora', r: 2, alpha: 2 }, 0), /selects no linear module .* q_proj, up_proj, lm_head/);
  });
});

describe('DoRA adapters from the factory', () => {
  const modules = [linearModule('model.layers.0.self_attn.q_proj', 8, 6), linearModule('model.layers.0.mlp.up_proj', 8, 12)];
  const bases = new Map<string, BaseLinear>([
    ['model.layers.0.self_attn.q_proj', { weight: seeded([6, 8], 1) as tf.Tensor2D, layout: 'out_in' }],
    ['model.layers.0.mlp.up_proj', { weight: seeded([8, 12], 2) as tf.Tensor2D, layout: 'in_out' }],
  ]);
  const baseOf = (module: string) => bases.get(module)!;

  it('starts each magnitude at the norms of its weight (W + ΔW, with ΔW = 0 when B starts at zero)', async () => {
    const adapters = createAdapters(modules, { method: 'moslora', r: 2, alpha: 4, useDora: true }, 3, undefined, baseOf);
    for (const [module, { weights }] of adapters) {
      const base = baseOf(module);
      const expected = tf.norm(base.weight, 'euclidean', base.layout === 'out_in' ? 1 : 0);
      assert.ok(maxAbsDiff(weights.magnitude!, expected) < 1e-6, module);
    }
    const kaiming = createAdapters(modules, { method: 'moslora', r: 2, alpha: 4, useDora: true, bInit: 'kaiming' }, 3, undefined, baseOf);
    const q = kaiming.get('model.layers.0.self_attn.q_proj')!;
    assert.ok(maxAbsDiff(q.weights.magnitude!, doraWeightNorms(baseOf('model.layers.0.self_attn.q_proj'), q.spec, q.weights)) < 1e-6);
    disposeAdapters(adapters);
    disposeAdapters(kaiming);
  });

  it('makes the magnitude a trainable variable named lora_magnitude_vector, after the module\'s factors', () => {
    const adapters = createAdapters(modules.slice(0, 1), { method: 'moslora', r: 2, alpha: 4, useDora: true }, 3, undefined, baseOf);
    assert.deepEqual([...makeTrainable(adapters).keys()], ['lora_A', 'lora_B', 'lora_AB.0', 'lora_magnitude_vector'].map((t) => `model.layers.0.self_attn.q_proj.${t}`));
    disposeAdapters(adapters);
  });

  it('needs the base weight for a fresh DoRA adapter, and refuses saved weights that do not match use_dora', () => {
    assert.throws(() => createAdapters(modules, { method: 'lora', r: 2, alpha: 4, useDora: true }, 3), /model\.layers\.0\.self_attn\.q_proj: a DoRA adapter \(use_dora\) starts from its module's weight/);
    const plain = createAdapters(modules, { method: 'lora', r: 2, alpha: 4 }, 3);
    assert.throws(
      () => createAdapters(modules, { method: 'lora', r: 2, alpha: 4, useDora: true }, 3, plain, baseOf),
      /the saved adapter has no DoRA magnitude \(lora_magnitude_vector\) but the config says use_dora: true/,
    );
    disposeAdapters(plain);
  });
});
