// DoRA against PEFT's layer: test/fixtures/peft/tiny-<model>-dora holds a MoSLoRA adapter with
// use_dora that this tool trained on a model fixture (adapter/, with the mixer and the magnitudes)
// and its export (peft/), and the logits that PEFT's LoRA layer with use_dora gives with that
// export, re-implemented in torch operation by operation (scripts/reference/make_dora_reference.py,
// which also checked that the native adapter, its mixer applied as the reference MoSLoRA code
// applies it, and PEFT's merge give the same logits).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { disposeAdapters } from '../../server/models/adapters';
import { exportPeft, loadAdapter } from '../../server/engine/adapter-files';
import { SafetensorsFile } from '../../server/formats/safetensors';
import { CausalLM } from '../../server/models/model';
import { maxAbsDiff } from '../helpers/tensors';

const FIXTURES = join(__dirname, '..', 'fixtures');
// Llama (nn.Linear, [out, in]) and GPT-2 (Conv1D, [in, out]: PEFT's fan_in_fan_out, fused c_attn)
const CASES = [
  { adapter: 'tiny-llama-dora', base: 'tiny-llama' },
  { adapter: 'tiny-gpt2-dora', base: 'tiny-gpt2' },
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
  describe(`a DoRA adapter of ${baseName} computes what PEFT's DoRA layer computes`, () => {
    const fixture = join(FIXTURES, 'peft', name);
    const baseDir = join(FIXTURES, 'models', baseName);
    let model: CausalLM;
    let ids: number[][];
    let reference: tf.Tensor3D;
    let dir: string;
    before(async () => {
      await selectBackend('wasm');
      model = await CausalLM.load(baseDir);
      ids = (JSON.parse(await readFile(join(fixture, 'reference.json'), 'utf8')) as { input_ids: number[][] }).input_ids;
      const logits = (await readTensors(join(fixture, 'reference.safetensors'))).get('logits')!;
      reference = tf.tensor3d(logits.values, logits.shape as [number, number, number]);
      dir = await mkdtemp(join(tmpdir(), 'moslora-dora-'));
    });
    after(async () => {
      model.dispose();
      reference.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    for (const form of ['adapter', 'peft'] as const) {
      it(`the ${form === 'adapter' ? 'native adapter (mixers and magnitudes)' : 'PEFT export (LoRA with use_dora)'} gives the reference logits within 1e-4`, async (t) => {
        const { settings, adapters } = await loadAdapter(join(fixture, form));
        try {
          assert.equal(settings.useDora, true);
          const diff = tf.tidy(() => maxAbsDiff(model.forward(ids, { adapters }), reference));
          t.diagnostic(`max |Δlogit| vs PEFT's DoRA layer in torch: ${diff.toExponential(2)}`);
          assert.ok(diff < 1e-4, `max abs diff ${diff}`);
          // the magnitudes matter: the same factors without DoRA are far from the reference
          const plain = new Map([...adapters].map(([module, { spec, weights }]) => [module, { spec: { ...spec, useDora: false }, weights: { A: weights.A, B: weights.B, mixers: weights.mixers } }]));
          assert.ok(tf.tidy(() => maxAbsDiff(model.forward(ids, { adapters: plain }), reference)) > 1e-2);
        } finally {
          disposeAdapters(adapters);
        }
      });
    }

    it('exporting the native adapter today writes the fixture\'s PEFT tensors and config', async () => {
      const { settings, adapters } = await loadAdapter(join(fixture, 'adapter'));
      await exportPeft(join(dir, 'peft'), adapters, settings);
      disposeAdapters(adapters);
      const [ours, fixed] = [await readTensors(join(dir, 'peft', 'adapter_model.safetensors')), await readTensors(join(fixture, 'peft', 'adapter_model.safetensors'))];
      assert.deepEqual([...ours.keys()].sort(), [...fixed.keys()].sort());
      assert.ok([...fixed.keys()].some((key) => key.endsWith('.lora_magnitude_vector')));
      for (const [tensor, { shape, values }] of fixed) {
        assert.deepEqual(ours.get(tensor)!.shape, shape, tensor);
        const diff = Math.max(...values.map((v, i) => Math.abs(v - ours.get(tensor)!.values[i]!)));
        assert.ok(diff < 1e-6, `${tensor}: max abs diff ${diff}`);
      }
      // the modules in any order: loading reads them in the file's (sorted) order, training in the model's
      const config = async (d: string): Promise<Record<string, unknown>> => {
        const json = JSON.parse(await readFile(join(d, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
        return { ...json, base_model_name_or_path: null, target_modules: [...(json.target_modules as string[])].sort() };
      };
      const written = await config(join(dir, 'peft'));
      assert.equal(written.use_dora, true);
      assert.deepEqual(written, await config(join(fixture, 'peft')));
    });
  });
}
