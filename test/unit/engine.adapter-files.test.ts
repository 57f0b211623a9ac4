// Adapter folders on disk (server/engine/adapter-files.ts): the native adapter round-trips exactly
// under PEFT's tensor names, the PEFT export is plain LoRA with the same outputs, and a damaged
// folder is refused with the file and the problem.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { resolveAdapterSpec } from '../../kernels/adapter/spec';
import { adaptedLinear, type TensorBaseLinear, type Adapter } from '../../kernels/adapter/linear';
import { exportPeft, loadAdapter, saveAdapter, type AdapterSettings } from '../../server/engine/adapter-files';
import { SafetensorsFile, writeSafetensors } from '../../server/formats/safetensors';
import { trainedAdapters } from '../helpers/adapters';
import { maxAbsDiff, seeded } from '../helpers/tensors';
import type { AdapterMethod } from '../../protocol/methods';

const MODULES = ['model.layers.0.self_attn.q_proj', 'model.layers.1.mlp.down_proj'];

function trained(method: AdapterMethod): { adapters: Map<string, Adapter>; settings: AdapterSettings } {
  const adapters = trainedAdapters(MODULES.map((name) => ({ name, dIn: 24, dOut: 16 })), { method, r: 4, alpha: 8, chainLength: 3 }, 1);
  const settings: AdapterSettings = {
    baseModel: '../tiny-model', method, r: 4, alpha: 8, dropout: 0.05, useRslora: false, mixerInit: 'kaiming', chainLength: 3,
    targetModules: ['q_proj', 'down_proj'], fanInFanOut: false,
  };
  return { adapters, settings };
}

let dir: string;

describe('adapter folders', () => {
  before(async () => {
    await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-adapter-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const method of ['lora', 'moslora', 'linchain'] as const) {
    it(`${method}: the native adapter round-trips exactly, with the PEFT tensor names`, async () => {
      const { adapters, settings } = trained(method);
      const out = join(dir, `native-${method}`);
      await saveAdapter(out, adapters, settings);
      const loaded = await loadAdapter(out);
      assert.equal(loaded.settings.method, method);
      for (const [module, { spec, weights }] of adapters) {
        const back = loaded.adapters.get(module)!;
        assert.equal(back.spec.method, spec.method);
        assert.equal(maxAbsDiff(back.weights.A, weights.A), 0);
        assert.equal(maxAbsDiff(back.weights.B, weights.B), 0);
        assert.equal(back.weights.mixers.length, weights.mixers.length);
        back.weights.mixers.forEach((m, i) => assert.equal(maxAbsDiff(m, weights.mixers[i]!), 0));
      }
      const file = await SafetensorsFile.open(join(out, 'adapter_model.safetensors'));
      const names = [...file.tensors.keys()];
      await file.close();
      assert.ok(names.includes('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'));
      if (method === 'moslora') assert.ok(names.includes('base_model.model.model.layers.0.self_attn.q_proj.lora_AB.weight'));
      if (method === 'linchain') assert.ok(names.includes('base_model.model.model.layers.0.self_attn.q_proj.lora_AB.2.weight'));
      const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
      assert.equal(config.peft_type, 'LORA');
      assert.equal(config.lora_use_mixer, method !== 'lora');
    });
  }

  it('the PEFT export is plain LoRA (no mixer tensors or keys) with the same outputs', async () => {
    const { adapters, settings } = trained('moslora');
    const out = join(dir, 'peft');
    await exportPeft(out, adapters, settings);
    const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    assert.equal(config.lora_use_mixer, undefined);
    assert.equal(config.moslora, undefined);
    assert.equal(config.r, 4);
    assert.equal(config.lora_alpha, 8);
    const loaded = await loadAdapter(out);
    assert.equal(loaded.settings.method, 'lora');
    const module = MODULES[0]!;
    const native = adapters.get(module)!;
    const plain = loaded.adapters.get(module)!;
    assert.equal(plain.weights.mixers.length, 0);
    const base: TensorBaseLinear = { weight: seeded([16, 24], 3) as tf.Tensor2D, layout: 'out_in' };
    const x = seeded([5, 24], 4);
    const diff = maxAbsDiff(adaptedLinear(x, base, plain), adaptedLinear(x, base, native));
    assert.ok(diff < 1e-5, `exported LoRA vs native MoSLoRA: ${diff}`);
  });

  it('a damaged adapter folder is refused with the file and the problem', async () => {
    const { adapters, settings } = trained('moslora');
    const out = join(dir, 'damaged');
    await saveAdapter(out, adapters, settings);
    await writeFile(join(out, 'adapter_config.json'), '{"peft_type": "IA3", "r": 4, "lora_alpha": 8}');
    await assert.rejects(loadAdapter(out), /adapter_config\.json: peft_type is "IA3"; only LORA adapters/);
    await writeFile(join(out, 'adapter_config.json'), '{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "lora_use_mixer": true}');
    await writeSafetensors(join(out, 'adapter_model.safetensors'), [
      { name: 'base_model.model.q.lora_A.weight', dtype: 'F32', shape: [4, 6], data: new Float32Array(24) },
      { name: 'base_model.model.q.lora_B.weight', dtype: 'F32', shape: [5, 4], data: new Float32Array(20) },
    ]);
    await assert.rejects(loadAdapter(out), /adapter_model\.safetensors: module q has no tensor "base_model\.model\.q\.lora_AB\.weight"/);
    await writeSafetensors(join(out, 'adapter_model.safetensors'), [
      { name: 'base_model.model.q.lora_A.weight', dtype: 'F32', shape: [4, 6], data: new Float32Array(24) },
      { name: 'base_model.model.q.lora_B.weight', dtype: 'F32', shape: [5, 4], data: new Float32Array(20) },
      { name: 'base_model.model.q.lora_AB.weight', dtype: 'F32', shape: [3, 3], data: new Float32Array(9) },
    ]);
    await assert.rejects(loadAdapter(out), /module q: mixers\[0\]: shape \[3, 3\] does not match the expected \[4, 4\]/);
    await assert.rejects(loadAdapter(join(dir, 'nowhere')), /nowhere\/adapter_config\.json: cannot read the adapter config \(ENOENT\)/);
  });

  it('records the stored precision of the base it trained on as the config keys, reads it back, and refuses a wrong one', async () => {
    const { adapters, settings } = trained('moslora');
    const out = join(dir, 'nf4');
    const nf4 = { torch_dtype: 'bfloat16', load_in_8bit: false, load_in_4bit: true } as const;
    await saveAdapter(out, adapters, { ...settings, basePrecision: nf4 });
    const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    // each key that applies, its default written out
    assert.deepEqual(config.moslora.base_precision, { torch_dtype: 'bfloat16', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', quant_group_size: 64 });
    assert.deepEqual((await loadAdapter(out)).settings.basePrecision, { ...nf4, bnb_4bit_quant_type: 'nf4', quant_group_size: 64 });
    await saveAdapter(out, adapters, { ...settings, basePrecision: { torch_dtype: 'float32', load_in_8bit: true, load_in_4bit: false, quant_group_size: 128 } });
    assert.deepEqual(JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')).moslora.base_precision, { torch_dtype: 'float32', load_in_8bit: true, quant_group_size: 128 });
    // the PEFT export writes only what stock PEFT reads; an adapter without the record reads as not recorded
    await exportPeft(join(dir, 'nf4-peft'), adapters, { ...settings, basePrecision: nf4 });
    assert.equal((await loadAdapter(join(dir, 'nf4-peft'))).settings.basePrecision, undefined);
    const wrong = async (record: unknown, problem: RegExp) => {
      await writeFile(join(out, 'adapter_config.json'), JSON.stringify({ ...config, moslora: { ...config.moslora, base_precision: record } }));
      await assert.rejects(loadAdapter(out), problem);
    };
    await wrong({ torch_dtype: 'float8' }, /nf4\/adapter_config\.json: moslora\.base_precision\.torch_dtype: .*"float32"\|"bfloat16"\|"float16".*\(the stored precision of the frozen base the adapter trained on/);
    await wrong({ load_in_8bit: true, load_in_4bit: true }, /moslora\.base_precision\.load_in_4bit: load_in_8bit and load_in_4bit are both true; choose one/);
    await wrong({ load_in_4bit: true, quant_group_size: 48 }, /moslora\.base_precision\.quant_group_size: must be a power of two from 16 to 1024/);
    await wrong({ load_in_4bit: true, blocksize: 64 }, /moslora\.base_precision: Unrecognized key: "blocksize"/);
    await wrong('nf4', /moslora\.base_precision: .*expected object/);
  });

  describe('DoRA (use_dora)', () => {
    /** The trained adapters with magnitudes away from any norm, as after training. */
    function dora(method: AdapterMethod) {
      const { adapters, settings } = trained(method);
      for (const [i, adapter] of [...adapters.values()].entries()) {
        adapter.spec = resolveAdapterSpec({ ...adapter.spec, useDora: true });
        adapter.weights.magnitude = tf.add(seeded([16], 30 + i, 0.5), 2) as tf.Tensor1D;
      }
      return { adapters, settings: { ...settings, useDora: true } };
    }

    for (const method of ['lora', 'moslora', 'linchain'] as const) {
      it(`${method}: the native adapter round-trips its magnitudes under PEFT's key, and says use_dora`, async () => {
        const { adapters, settings } = dora(method);
        const out = join(dir, `dora-${method}`);
        await saveAdapter(out, adapters, settings);
        const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
        assert.equal(config.use_dora, true);
        const file = await SafetensorsFile.open(join(out, 'adapter_model.safetensors'));
        assert.deepEqual(file.tensors.get(`base_model.model.${MODULES[0]}.lora_magnitude_vector`)?.shape, [16]);
        await file.close();
        const loaded = await loadAdapter(out);
        assert.equal(loaded.settings.useDora, true);
        for (const [module, { weights }] of adapters) {
          const back = loaded.adapters.get(module)!;
          assert.equal(back.spec.useDora, true);
          assert.equal(maxAbsDiff(back.weights.magnitude!, weights.magnitude!), 0);
        }
      });
    }

    it('the PEFT export is LoRA with DoRA: A′ = M·A, B, the magnitudes, use_dora: true, and the same outputs', async () => {
      const { adapters, settings } = dora('moslora');
      const out = join(dir, 'dora-peft');
      await exportPeft(out, adapters, settings);
      const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
      assert.equal(config.use_dora, true);
      assert.equal(config.lora_use_mixer, undefined);
      const file = await SafetensorsFile.open(join(out, 'adapter_model.safetensors'));
      const names = [...file.tensors.keys()].sort();
      await file.close();
      assert.deepEqual(names, MODULES.flatMap((m) => ['lora_A.weight', 'lora_B.weight', 'lora_magnitude_vector'].map((t) => `base_model.model.${m}.${t}`)).sort());
      const loaded = await loadAdapter(out);
      assert.equal(loaded.settings.method, 'lora');
      const module = MODULES[0]!;
      const base: TensorBaseLinear = { weight: seeded([16, 24], 3) as tf.Tensor2D, bias: seeded([16], 5) as tf.Tensor1D, layout: 'out_in' };
      const x = seeded([5, 24], 4);
      const diff = maxAbsDiff(adaptedLinear(x, base, loaded.adapters.get(module)!), adaptedLinear(x, base, adapters.get(module)!));
      assert.ok(diff < 1e-5, `exported LoRA+DoRA vs native MoSLoRA+DoRA: ${diff}`);
    });

    it('reads the magnitude saved as lora_magnitude_vector.weight too, and refuses a missing or misshapen one', async () => {
      const { adapters, settings } = dora('lora');
      const out = join(dir, 'dora-damaged');
      await saveAdapter(out, adapters, settings);
      const path = join(out, 'adapter_model.safetensors');
      const file = await SafetensorsFile.open(path);
      const tensors = await Promise.all([...file.tensors].map(async ([name, { shape }]) => ({ name, dtype: 'F32' as const, shape: [...shape], data: await file.readFloat32(name) })));
      await file.close();
      const q = `base_model.model.${MODULES[0]}.lora_magnitude_vector`;
      await writeSafetensors(path, tensors.map((t) => (t.name === q ? { ...t, name: `${q}.weight` } : t)));
      const loaded = await loadAdapter(out);
      assert.equal(maxAbsDiff(loaded.adapters.get(MODULES[0]!)!.weights.magnitude!, adapters.get(MODULES[0]!)!.weights.magnitude!), 0);
      await writeSafetensors(path, tensors.filter((t) => t.name !== q));
      await assert.rejects(loadAdapter(out), new RegExp(`module ${MODULES[0]!.replaceAll('.', '\\.')} has no tensor "${q.replaceAll('.', '\\.')}" \\(DoRA's magnitude; .*adapter_config\\.json sets "use_dora": true\\)`));
      await writeSafetensors(path, tensors.map((t) => (t.name === q ? { ...t, shape: [4, 4] } : t)));
      await assert.rejects(loadAdapter(out), /lora_magnitude_vector" must be 1-D \[d_out\], its shape is \[4, 4\]/);
      await writeSafetensors(path, tensors.map((t) => (t.name === q ? { ...t, shape: [8], data: t.data.slice(0, 8) } : t)));
      await assert.rejects(loadAdapter(out), /module model\.layers\.0\.self_attn\.q_proj: magnitude: shape \[8\] does not match the expected \[16\]/);
      await writeFile(join(out, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, use_dora: 'yes' }));
      await assert.rejects(loadAdapter(out), /adapter_config\.json: "use_dora" must be true or false, got "yes"/);
    });
  });
});
