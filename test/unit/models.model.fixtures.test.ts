// Parity with transformers: the reference fixtures' logits, loss and greedy tokens were computed
// by scripts/reference (a torch re-implementation of transformers' modelling code).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { SafetensorsFile } from '../../server/formats/safetensors';
import { adaptersFor, disposeAdapters } from '../../server/models/adapters';
import { generate } from '../../server/models/generate';
import { inspectModel } from '../../server/models/inspect';
import { CausalLM } from '../../server/models/model';
import { maxAbsDiff } from '../helpers/tensors';

const FIXTURES = join(__dirname, '..', 'fixtures', 'models');
const MODELS = ['tiny-llama', 'tiny-qwen2', 'tiny-gpt2'] as const;

interface Reference {
  input_ids: number[][];
  labels: number[][];
  loss: number;
  generated_greedy: { prompt_ids: number[]; new_ids: number[] };
}

async function reference(name: string): Promise<{ ref: Reference; logits: tf.Tensor3D }> {
  const dir = join(FIXTURES, name);
  const ref = JSON.parse(await readFile(join(dir, 'reference.json'), 'utf8')) as Reference;
  const file = await SafetensorsFile.open(join(dir, 'reference.safetensors'));
  try {
    const shape = file.info('logits').shape as [number, number, number];
    return { ref, logits: tf.tensor3d(await file.readFloat32('logits'), shape) };
  } finally {
    await file.close();
  }
}

describe('parity with transformers on the reference fixtures', () => {
  const loaded = new Map<string, { model: CausalLM; ref: Reference; logits: tf.Tensor3D }>();
  before(async () => {
    await selectBackend('wasm');
    for (const name of [...MODELS, 'tiny-llama-sharded']) {
      loaded.set(name, { model: await CausalLM.load(join(FIXTURES, name)), ...(await reference(name)) });
    }
  });
  after(() => {
    for (const { model, logits } of loaded.values()) {
      model.dispose();
      logits.dispose();
    }
  });

  for (const name of MODELS) {
    it(`${name}: logits within 1e-4 of the reference, and the same loss`, (t) => {
      const { model, ref, logits } = loaded.get(name)!;
      tf.tidy(() => {
        const ours = model.forward(ref.input_ids);
        assert.deepEqual(ours.shape, logits.shape);
        const diff = maxAbsDiff(ours, logits);
        t.diagnostic(`max |Δlogit| = ${diff.toExponential(2)}`);
        assert.ok(diff < 1e-4, `max abs diff ${diff}`);
        const loss = model.loss(ref.input_ids, ref.labels).dataSync()[0]!;
        t.diagnostic(`loss ${loss} vs reference ${ref.loss}`);
        assert.ok(Math.abs(loss - ref.loss) < 1e-5, `loss ${loss} vs ${ref.loss}`);
      });
    });

    it(`${name}: greedy generation gives the reference tokens, with the cache and without`, async () => {
      const { model, ref } = loaded.get(name)!;
      const { prompt_ids: prompt, new_ids: expected } = ref.generated_greedy;
      for (const useCache of [true, false]) {
        const generated = await generate(model, prompt, { maxNewTokens: expected.length, useCache });
        assert.deepEqual(generated.tokens, expected);
      }
    });
  }

  it('inspect gives the parameter counts and stored dtypes of the fixtures from their headers', async () => {
    const expected = { 'tiny-llama': [139_584, 'F32'], 'tiny-qwen2': [102_912, 'BF16'], 'tiny-gpt2': [136_960, 'F16'], 'tiny-llama-sharded': [139_584, 'F32'] };
    for (const [name, [count, dtype]] of Object.entries(expected)) {
      const inspection = await inspectModel(join(FIXTURES, name));
      assert.deepEqual([inspection.parameterCount, inspection.dtypes.map((d) => d.dtype)], [count, [dtype]], name);
      assert.equal(loaded.get(name)!.model.parameterCount, count);
    }
  });

  it('tiny-llama-sharded: the sharded checkpoint gives the single file\'s logits exactly', () => {
    const sharded = loaded.get('tiny-llama-sharded')!;
    const single = loaded.get('tiny-llama')!;
    assert.ok(sharded.model.parameterCount === single.model.parameterCount);
    tf.tidy(() => {
      assert.equal(maxAbsDiff(sharded.model.forward(single.ref.input_ids), single.model.forward(single.ref.input_ids)), 0);
      assert.ok(maxAbsDiff(sharded.model.forward(sharded.ref.input_ids), sharded.logits) < 1e-4);
    });
  });

  it('tiny-llama: a MoSLoRA adapter on q_proj gets finite gradients on wasm; only B\'s are non-zero at step 0', () => {
    const { model, ref } = loaded.get('tiny-llama')!;
    const { adapters } = adaptersFor(model.linearModules, ['q_proj'], { method: 'moslora', r: 8, alpha: 16 }, 1);
    const names = [...adapters.keys()];
    const flat = names.flatMap((n) => [adapters.get(n)!.weights.A, adapters.get(n)!.weights.B, adapters.get(n)!.weights.mixers[0]!]);
    tf.tidy(() => {
      const grads = tf.grads((...factors: tf.Tensor[]) => {
        const set = new Map(names.map((n, i) => [n, { spec: adapters.get(n)!.spec, weights: { A: factors[3 * i] as tf.Tensor2D, B: factors[3 * i + 1] as tf.Tensor2D, mixers: [factors[3 * i + 2] as tf.Tensor2D] } }]));
        return model.loss(ref.input_ids, ref.labels, { adapters: set });
      })(flat);
      const largest = grads.map((g) => {
        assert.equal(tf.all(tf.isFinite(g)).dataSync()[0], 1);
        return tf.max(tf.abs(g)).dataSync()[0]!;
      });
      names.forEach((_, i) => {
        // B = 0 multiplies dL/dA = s·Mᵀ·Bᵀ·g·xᵀ and dL/dM = s·Bᵀ·g·(A·x)ᵀ; dL/dB = s·g·(M·A·x)ᵀ does not vanish.
        assert.equal(largest[3 * i], 0, 'dL/dA');
        assert.ok(largest[3 * i + 1]! > 1e-6, 'dL/dB');
        assert.equal(largest[3 * i + 2], 0, 'dL/dM');
      });
    });
    disposeAdapters(adapters);
  });
});
