// DoRA against PEFT's layer: test/fixtures/peft/tiny-<model>-dora holds a MoSLoRA adapter with
// use_dora that this tool trained on a model fixture (adapter/, with the mixer and the magnitudes)
// and its export (peft/), and the logits that PEFT's LoRA layer with use_dora gives with that
// export, re-implemented in torch operation by operation (scripts/reference/make_dora_reference.py,
// which also checked that the native adapter, its mixer applied as the reference MoSLoRA code
// applies it, and PEFT's merge give the same logits).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { disposeAdapters } from '../../server/models/adapters';
import { exportPeft, loadAdapter } from '../../server/engine/adapter-files';
import { assertSameTensors, referenceFixture } from '../helpers/peft-fixtures';
import { maxAbsDiff } from '../helpers/tensors';

// Llama (nn.Linear, [out, in]) and GPT-2 (Conv1D, [in, out]: PEFT's fan_in_fan_out, fused c_attn)
const CASES = [
  { adapter: 'tiny-llama-dora', base: 'tiny-llama' },
  { adapter: 'tiny-gpt2-dora', base: 'tiny-gpt2' },
];

for (const { adapter: name, base: baseName } of CASES) {
  describe(`a DoRA adapter of ${baseName} computes what PEFT's DoRA layer computes`, () => {
    const f = referenceFixture(name, baseName);
    for (const form of ['adapter', 'peft'] as const) {
      it(`the ${form === 'adapter' ? 'native adapter (mixers and magnitudes)' : 'PEFT export (LoRA with use_dora)'} gives the reference logits within 1e-4`, async (t) => {
        const { settings, adapters } = await loadAdapter(join(f.fixture, form));
        try {
          assert.equal(settings.useDora, true);
          const diff = tf.tidy(() => maxAbsDiff(f.model.forward(f.ids, { adapters }), f.reference));
          t.diagnostic(`max |Δlogit| vs PEFT's DoRA layer in torch: ${diff.toExponential(2)}`);
          assert.ok(diff < 1e-4, `max abs diff ${diff}`);
          // the magnitudes matter: the same factors without DoRA are far from the reference
          const plain = new Map([...adapters].map(([module, { spec, weights }]) => [module, { spec: { ...spec, useDora: false }, weights: { A: weights.A, B: weights.B, mixers: weights.mixers } }]));
          assert.ok(tf.tidy(() => maxAbsDiff(f.model.forward(f.ids, { adapters: plain }), f.reference)) > 1e-2);
        } finally {
          disposeAdapters(adapters);
        }
      });
    }

    it('exporting the native adapter today writes the fixture\'s PEFT tensors and config', async () => {
      const { settings, adapters } = await loadAdapter(join(f.fixture, 'adapter'));
      await exportPeft(join(f.dir, 'peft'), adapters, settings);
      disposeAdapters(adapters);
      const fixed = await assertSameTensors(join(f.dir, 'peft', 'adapter_model.safetensors'), join(f.fixture, 'peft', 'adapter_model.safetensors'));
      assert.ok([...fixed.keys()].some((key) => key.endsWith('.lora_magnitude_vector')));
      // the modules in any order: loading reads them in the file's (sorted) order, training in the model's
      const config = async (d: string): Promise<Record<string, unknown>> => {
        const json = JSON.parse(await readFile(join(d, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
        return { ...json, base_model_name_or_path: null, target_modules: [...(json.target_modules as string[])].sort() };
      };
      const written = await config(join(f.dir, 'peft'));
      assert.equal(written.use_dora, true);
      assert.deepEqual(written, await config(join(f.fixture, 'peft')));
    });
  });
}
