// Generation (server/models/generate.ts) on tiny random checkpoints of each architecture: the KV
// cache gives the full sequence's logits and tokens, seeded sampling repeats, and tokens are chosen
// as torch chooses them.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { argmax, generate, sampleTopP } from '../../server/models/generate';
import { KVCache } from '../../server/models/layers';
import { adaptersFor, disposeAdapters } from '../../server/models/adapters';
import { CausalLM } from '../../server/models/model';
import { maxAbsDiff } from '../helpers/tensors';
import { TINY_GPT2_CONFIG, TINY_LLAMA_CONFIG, writeTinyModel } from '../helpers/tiny-models';

const MODELS = {
  llama: TINY_LLAMA_CONFIG,
  'mistral (sliding window 4)': { ...TINY_LLAMA_CONFIG, architectures: ['MistralForCausalLM'], sliding_window: 4 },
  'qwen2 (tied)': { ...TINY_LLAMA_CONFIG, architectures: ['Qwen2ForCausalLM'], tie_word_embeddings: true },
  gpt2: TINY_GPT2_CONFIG,
};

describe('generation with a KV cache', () => {
  const models = new Map<string, CausalLM>();
  const dirs: string[] = [];
  before(async () => {
    await selectBackend('wasm');
    for (const [name, config] of Object.entries(MODELS)) {
      const dir = await writeTinyModel(config, 7);
      dirs.push(dir);
      models.set(name, await CausalLM.load(dir));
    }
  });
  after(async () => {
    for (const model of models.values()) model.dispose();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  for (const name of Object.keys(MODELS)) {
    it(`${name}: logits fed token by token through the cache equal the full sequence's`, () => {
      const model = models.get(name)!;
      const ids = [
        [3, 9, 4, 17, 5, 40, 11, 2, 8],
        [1, 1, 30, 6, 22, 47, 13, 0, 5],
      ];
      const cache = new KVCache();
      tf.tidy(() => {
        const full = model.forward(ids); // (2, 9, V)
        const parts = [model.forward(ids.map((row) => row.slice(0, 4)), { cache })]; // a prompt, then one token at a time
        for (let t = 4; t < 9; t++) parts.push(model.forward(ids.map((row) => [row[t]!]), { cache }));
        assert.equal(cache.length, 9);
        assert.ok(maxAbsDiff(tf.concat(parts, 1), full) < 1e-5);
      });
      cache.dispose();
    });

    it(`${name}: greedy generation gives the same tokens with and without the cache, every time`, async () => {
      const model = models.get(name)!;
      const options = { maxNewTokens: 12, eosTokenIds: [] };
      const cached = await generate(model, [5, 9, 14], options);
      assert.deepEqual(cached, { tokens: cached.tokens, stoppedBy: 'max_new_tokens' });
      assert.equal(cached.tokens.length, 12);
      assert.deepEqual((await generate(model, [5, 9, 14], { ...options, useCache: false })).tokens, cached.tokens);
      const count = tf.memory().numTensors;
      assert.deepEqual((await generate(model, [5, 9, 14], options)).tokens, cached.tokens);
      assert.equal(tf.memory().numTensors, count, 'generation frees its cache and every step\'s tensors');
    });
  }

  it('with DoRA adapters: the tokens of full forward passes, the norms computed once, not at every token, and freed', async () => {
    const model = models.get('llama')!;
    const template = { method: 'moslora' as const, r: 4, alpha: 8, bInit: 'kaiming' as const, useDora: true };
    const { adapters } = adaptersFor(model.linearModules, ['q_proj', 'v_proj'], template, 3, (module) => model.base(module));
    for (const { weights } of adapters.values()) {
      const started = weights.magnitude!;
      weights.magnitude = tf.mul(started, 1.5) as tf.Tensor1D;
      started.dispose();
    }
    const prompt = [5, 9, 14];
    const expected: number[] = [];
    for (let step = 0; step < 6; step++) {
      const logits = tf.tidy(() => model.forward([[...prompt, ...expected]], { adapters }));
      expected.push(argmax((await logits.data()).slice(-logits.shape[2]) as Float32Array));
      logits.dispose();
    }
    assert.notDeepEqual((await generate(model, prompt, { maxNewTokens: 6, eosTokenIds: [] })).tokens, expected, 'the adapter changes the tokens');
    const count = tf.memory().numTensors;
    let tokens: number[] = [];
    const profile = await tf.profile(async () => {
      tokens = (await generate(model, prompt, { maxNewTokens: 6, eosTokenIds: [], adapters })).tokens;
    });
    assert.deepEqual(tokens, expected);
    // the norms' square root: once per DoRA module (2 layers × q, v), not once per module and token
    assert.equal(profile.kernels.filter((k) => k.name === 'Sqrt').length, adapters.size);
    assert.equal(tf.memory().numTensors, count);
    disposeAdapters(adapters);
  });

  it('sampling with a seed repeats, with the cache or without', async () => {
    const model = models.get('llama')!;
    const options = { maxNewTokens: 10, temperature: 1.5, topP: 0.9, seed: 3, eosTokenIds: [] };
    const first = await generate(model, [5, 9], options);
    assert.deepEqual((await generate(model, [5, 9], options)).tokens, first.tokens);
    assert.deepEqual((await generate(model, [5, 9], { ...options, useCache: false })).tokens, first.tokens);
    const others = await Promise.all([4, 5, 6].map((seed) => generate(model, [5, 9], { ...options, seed })));
    assert.ok(others.some((g) => g.tokens.join() !== first.tokens.join()), 'other seeds give other samples');
  });

  it('stops at an end-of-sequence token and includes it', async () => {
    const model = models.get('gpt2')!;
    const free = await generate(model, [5, 9], { maxNewTokens: 6, eosTokenIds: [] });
    const stop = free.tokens[2]!;
    const stopped = await generate(model, [5, 9], { maxNewTokens: 6, eosTokenIds: [stop] });
    assert.deepEqual(stopped, { tokens: free.tokens.slice(0, free.tokens.indexOf(stop) + 1), stoppedBy: 'eos' });
  });

  it('rejects options out of range, naming them', async () => {
    const model = models.get('gpt2')!;
    await assert.rejects(generate(model, [1], { maxNewTokens: 0 }), /max_new_tokens: must be a positive integer, got 0/);
    await assert.rejects(generate(model, [1], { maxNewTokens: 2, topP: 0 }), /top_p: must be in \(0, 1\]/);
    await assert.rejects(generate(model, [1], { maxNewTokens: 2, temperature: -1 }), /temperature/);
    await assert.rejects(generate(model, Array(30).fill(1), { maxNewTokens: 5 }), /33 positions exceed n_positions = 32/);
  });
});

describe('token choice', () => {
  it('argmax takes the first of equal maxima, as torch.argmax', () => {
    assert.equal(argmax(new Float32Array([1, 3, 3, 2])), 1);
  });

  it('top-p keeps the most likely tokens until their mass reaches p, at least one', () => {
    const logits = new Float32Array([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
    const drawn = (topP: number) => new Set(Array.from({ length: 200 }, (_, i) => sampleTopP(logits, 1, topP, (i + 0.5) / 200)));
    assert.deepEqual(drawn(0.5), new Set([0])); // 0.5 reached by the first token alone
    assert.deepEqual(drawn(0.8), new Set([0, 1]));
    assert.deepEqual(drawn(0.81), new Set([0, 1, 2]));
    assert.deepEqual(drawn(1), new Set([0, 1, 2, 3]));
    assert.deepEqual(drawn(0.01), new Set([0]));
    // Renormalised over the nucleus {0, 1}: token 0 has 0.5 / 0.8 of the mass.
    assert.equal(sampleTopP(logits, 1, 0.8, 0.62), 0);
    assert.equal(sampleTopP(logits, 1, 0.8, 0.63), 1);
  });
});
