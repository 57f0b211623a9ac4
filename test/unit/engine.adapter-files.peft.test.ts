// Compatibility with stock PEFT: test/fixtures/peft/tiny-<model>-moslora holds a MoSLoRA adapter this
// tool trained on a model fixture (adapter/, with the mixer) and its export (peft/), and the
// logits transformers 5.18 + PEFT 0.21 give with that export loaded by PeftModel.from_pretrained
// (scripts/reference/make_peft_reference.py, which also checked that PEFT loaded every tensor,
// that the native adapter run as the reference MoSLoRA code runs it gives the same logits, and
// that merge_and_unload does).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { exportPeft, loadAdapter } from '../../server/engine/adapter-files';
import { assertSameTensors, referenceFixture } from '../helpers/peft-fixtures';
import { maxAbsDiff } from '../helpers/tensors';

// Llama (nn.Linear, [out, in]) and GPT-2 (Conv1D, [in, out]: PEFT's fan_in_fan_out, fused c_attn)
const CASES = [
  { adapter: 'tiny-llama-moslora', base: 'tiny-llama' },
  { adapter: 'tiny-gpt2-moslora', base: 'tiny-gpt2' },
];

for (const { adapter: name, base: baseName } of CASES) {
  describe(`stock PEFT loads our export of a ${baseName} adapter and computes what we compute`, () => {
    const f = referenceFixture(name, baseName);
    for (const form of ['adapter', 'peft'] as const) {
      it(`the ${form === 'adapter' ? 'native adapter (with its mixers)' : 'PEFT export'} gives PEFT's logits within 1e-4`, async (t) => {
        const { adapters } = await loadAdapter(join(f.fixture, form));
        try {
          const diff = tf.tidy(() => maxAbsDiff(f.model.forward(f.ids, { adapters }), f.reference));
          t.diagnostic(`max |Δlogit| vs transformers + PEFT: ${diff.toExponential(2)}`);
          assert.ok(diff < 1e-4, `max abs diff ${diff}`);
          // the adapter matters: without it the logits are far from PEFT's
          assert.ok(tf.tidy(() => maxAbsDiff(f.model.forward(f.ids), f.reference)) > 0.1);
        } finally {
          for (const { weights } of adapters.values()) tf.dispose([weights.A, weights.B, ...weights.mixers]);
        }
      });
    }

    it('exporting the native adapter today writes the tensors and config PEFT loaded', async () => {
      const { settings, adapters } = await loadAdapter(join(f.fixture, 'adapter'));
      await exportPeft(join(f.dir, 'peft'), adapters, settings);
      for (const { weights } of adapters.values()) tf.dispose([weights.A, weights.B, ...weights.mixers]);
      await assertSameTensors(join(f.dir, 'peft', 'adapter_model.safetensors'), join(f.fixture, 'peft', 'adapter_model.safetensors'));
      const config = async (d: string) => JSON.parse(await readFile(join(d, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual({ ...(await config(join(f.dir, 'peft'))), base_model_name_or_path: null }, { ...(await config(join(f.fixture, 'peft'))), base_model_name_or_path: null });
    });
  });
}
