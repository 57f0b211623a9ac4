// Compatibility with stock PEFT: test/fixtures/peft/tiny-<model>-moslora holds a MoSLoRA adapter this
// tool trained on a model fixture (adapter/, with the mixer) and its export (peft/), and the
// logits transformers 5.18 + PEFT 0.21 give with that export loaded by PeftModel.from_pretrained
// (scripts/reference/make_peft_reference.py, which also checked that PEFT loaded every tensor,
// that the native adapter run as the reference MoSLoRA code runs it gives the same logits, and
// that merge_and_unload does).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { exportPeft, loadAdapter } from '../../server/engine/adapter-files';
import { SafetensorsFile } from '../../server/formats/safetensors';
import { CausalLM } from '../../server/models/model';
import { maxAbsDiff } from '../helpers/tensors';

const FIXTURES = join(__dirname, '..', 'fixtures');
// Llama (nn.Linear, [out, in]) and GPT-2 (Conv1D, [in, out]: PEFT's fan_in_fan_out, fused c_attn)
const CASES = [
  { adapter: 'tiny-llama-moslora', base: 'tiny-llama' },
  { adapter: 'tiny-gpt2-moslora', base: 'tiny-gpt2' },
];

async function readTensors(file: string): Promise<Map<string, { shape: readonly number[]; values: Float32Array }>> {
  const st = await SafetensorsFile.open(file);
  try {
    const out = new Map<string, { shape: readonly number[]; values: Float32Array }>();
    for (const [name, info] of st.tensors) out.set(name, { shape: info.shape, values: await st.readFloat32(name) });
    return out;
  } finally {
    await st.close();
  }
}

for (const { adapter: name, base: baseName } of CASES) {
  describe(`stock PEFT loads our export of a ${baseName} adapter and computes what we compute`, () => {
    const fixture = join(FIXTURES, 'peft', name);
    const baseDir = join(FIXTURES, 'models', baseName);
    let model: CausalLM;
    let ids: number[][];
    let peftLogits: tf.Tensor3D;
    let dir: string;
    before(async () => {
      await selectBackend('wasm');
      model = await CausalLM.load(baseDir);
      ids = (JSON.parse(await readFile(join(fixture, 'reference.json'), 'utf8')) as { input_ids: number[][] }).input_ids;
      const logits = (await readTensors(join(fixture, 'reference.safetensors'))).get('logits')!;
      peftLogits = tf.tensor3d(logits.values, logits.shape as [number, number, number]);
      dir = await mkdtemp(join(tmpdir(), 'moslora-peft-'));
    });
    after(async () => {
      model.dispose();
      peftLogits.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    for (const form of ['adapter', 'peft'] as const) {
      it(`the ${form === 'adapter' ? 'native adapter (with its mixers)' : 'PEFT export'} gives PEFT's logits within 1e-4`, async (t) => {
        const { adapters } = await loadAdapter(join(fixture, form));
        try {
          const diff = tf.tidy(() => maxAbsDiff(model.forward(ids, { adapters }), peftLogits));
          t.diagnostic(`max |Δlogit| vs transformers + PEFT: ${diff.toExponential(2)}`);
          assert.ok(diff < 1e-4, `max abs diff ${diff}`);
          // the adapter matters: without it the logits are far from PEFT's
          assert.ok(tf.tidy(() => maxAbsDiff(model.forward(ids), peftLogits)) > 0.1);
        } finally {
          for (const { weights } of adapters.values()) tf.dispose([weights.A, weights.B, ...weights.mixers]);
        }
      });
    }

    it('exporting the native adapter today writes the tensors and config PEFT loaded', async () => {
      const { settings, adapters } = await loadAdapter(join(fixture, 'adapter'));
      await exportPeft(join(dir, 'peft'), adapters, settings);
      for (const { weights } of adapters.values()) tf.dispose([weights.A, weights.B, ...weights.mixers]);
      const [ours, loaded] = [await readTensors(join(dir, 'peft', 'adapter_model.safetensors')), await readTensors(join(fixture, 'peft', 'adapter_model.safetensors'))];
      assert.deepEqual([...ours.keys()].sort(), [...loaded.keys()].sort());
      for (const [name, { shape, values }] of loaded) {
        assert.deepEqual(ours.get(name)!.shape, shape, name);
        const diff = Math.max(...values.map((v, i) => Math.abs(v - ours.get(name)!.values[i]!)));
        assert.ok(diff < 1e-6, `${name}: max abs diff ${diff}`);
      }
      const config = async (d: string) => JSON.parse(await readFile(join(d, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual({ ...(await config(join(dir, 'peft'))), base_model_name_or_path: null }, { ...(await config(join(fixture, 'peft'))), base_model_name_or_path: null });
    });
  });
}
