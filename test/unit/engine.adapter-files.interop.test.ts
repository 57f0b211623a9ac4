// Adapters from elsewhere (issue 23): the reference MoSLoRA code's adapter_model.bin
// (test/fixtures/peft/tiny-bin-moslora, written by torch with scripts/reference/make_bin_adapter.py),
// mixers a config does not mention, tensors the loader would not use, a merge on a model folder
// without a tokenizer, and what a PEFT export names as its base model and target modules.
// The CLI cases run the built dist/cli.js.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { resolveAdapterSpec } from '../../kernels/adapter/spec';
import { selectBackend } from '../../kernels/backends/backend';
import { initAdapterWeights } from '../../kernels/adapter/init';
import { deltaWeight } from '../../kernels/adapter/merge';
import type { Adapter } from '../../kernels/adapter/linear';
import { exportPeft, loadAdapter, peftBaseModel, saveAdapter, type AdapterSettings } from '../../server/engine/adapter-files';
import { UNRECORDED_PRECISION } from '../../server/engine/merge';
import { SafetensorsFile, writeSafetensors } from '../../server/formats/safetensors';
import { readModelLayout } from '../../server/models/modules';
import { maxAbsDiff } from '../helpers/tensors';

const run = promisify(execFile);
const cli = (...args: string[]) => run(process.execPath, ['dist/cli.js', ...args]);
const FIXTURES = join(__dirname, '..', 'fixtures');
const BIN = join(FIXTURES, 'peft', 'tiny-bin-moslora');
const Q = 'model.layers.0.self_attn.q_proj';
const V = 'model.layers.0.self_attn.v_proj';
let dir: string;

async function readTensors(file: string): Promise<Map<string, { dtype: string; shape: readonly number[]; values: Float32Array }>> {
  const st = await SafetensorsFile.open(file);
  try {
    const out = new Map<string, { dtype: string; shape: readonly number[]; values: Float32Array }>();
    for (const [name, info] of st.tensors) out.set(name, { dtype: info.dtype, shape: info.shape, values: await st.readFloat32(name) });
    return out;
  } finally {
    await st.close();
  }
}

/** The .bin fixture's twin: the same config with its tensors as adapter_model.safetensors. */
async function safetensorsTwin(): Promise<string> {
  const twin = join(dir, 'twin');
  await mkdir(twin, { recursive: true });
  await copyFile(join(BIN, 'adapter', 'adapter_config.json'), join(twin, 'adapter_config.json'));
  await copyFile(join(BIN, 'tensors.safetensors'), join(twin, 'adapter_model.safetensors'));
  return twin;
}

/** A MoSLoRA adapter on Q and V written natively, then with its config rewritten by `edit`. */
async function foreignAdapter(name: string, edit: (config: Record<string, unknown>) => void): Promise<{ path: string; adapters: Map<string, Adapter> }> {
  const adapters = new Map<string, Adapter>();
  [Q, V].forEach((module, i) => {
    const spec = resolveAdapterSpec({ method: 'moslora', dIn: 16, dOut: 12, r: 4, alpha: 8, bInit: 'kaiming' });
    adapters.set(module, { spec, weights: initAdapterWeights(spec, 3 + i) });
  });
  const path = join(dir, name);
  await saveAdapter(path, adapters, {
    baseModel: 'base', method: 'moslora', r: 4, alpha: 8, dropout: 0, useRslora: false, mixerInit: 'kaiming', chainLength: 2, targetModules: ['q_proj', 'v_proj'], fanInFanOut: false,
  });
  const config = JSON.parse(await readFile(join(path, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  edit(config);
  await writeFile(join(path, 'adapter_config.json'), JSON.stringify(config));
  return { path, adapters };
}

describe('adapters from elsewhere', () => {
  before(async () => {
    await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-interop-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe("the reference code's adapter_model.bin", () => {
    it('loads as exactly the adapter its safetensors twin holds', async () => {
      const [bin, twin] = [await loadAdapter(join(BIN, 'adapter')), await loadAdapter(await safetensorsTwin())];
      assert.equal(bin.settings.method, 'moslora');
      assert.equal(bin.adapters.size, 8);
      assert.deepEqual([...bin.adapters.keys()].sort(), [...twin.adapters.keys()].sort());
      for (const [module, { weights }] of bin.adapters) {
        const other = twin.adapters.get(module)!.weights;
        assert.equal(maxAbsDiff(weights.A, other.A), 0, module);
        assert.equal(maxAbsDiff(weights.B, other.B), 0, module);
        assert.equal(maxAbsDiff(weights.mixers[0]!, other.mixers[0]!), 0, module);
      }
    });

    it('exports exactly: the same file as from the twin, and the reference fold (A′ = lora_AB·lora_A, B′ = lora_B)', async () => {
      await cli('export', join(BIN, 'adapter'), '--peft', '--out', join(dir, 'bin-peft'));
      await cli('export', await safetensorsTwin(), '--peft', '--out', join(dir, 'twin-peft'));
      const exported = await readFile(join(dir, 'bin-peft', 'adapter_model.safetensors'));
      assert.ok(exported.equals(await readFile(join(dir, 'twin-peft', 'adapter_model.safetensors'))), 'the .bin and the safetensors twin export the same bytes');
      const [ours, reference] = [await readTensors(join(dir, 'bin-peft', 'adapter_model.safetensors')), await readTensors(join(BIN, 'peft.safetensors'))];
      assert.deepEqual([...ours.keys()].sort(), [...reference.keys()].sort());
      for (const [name, { shape, values }] of reference) {
        assert.deepEqual(ours.get(name)!.shape, shape, name);
        const diff = Math.max(...values.map((v, i) => Math.abs(v - ours.get(name)!.values[i]!)));
        // lora_B is copied; the fold is a float32 product here and a float64 one in the reference
        assert.ok(name.endsWith('lora_B.weight') ? diff === 0 : diff < 1e-6, `${name}: max abs diff ${diff}`);
      }
    });

    it('converts to adapter_model.safetensors beside it: every tensor, name, dtype and value', async () => {
      const folder = join(dir, 'to-convert');
      await cp(join(BIN, 'adapter'), folder, { recursive: true });
      const { stdout } = await cli('convert', folder, '--json');
      assert.deepEqual(JSON.parse(stdout), { file: join(folder, 'adapter_model.safetensors'), tensors: 24 });
      const [converted, expected] = [await readTensors(join(folder, 'adapter_model.safetensors')), await readTensors(join(BIN, 'tensors.safetensors'))];
      assert.deepEqual([...converted.keys()].sort(), [...expected.keys()].sort());
      for (const [name, tensor] of expected) assert.deepEqual(converted.get(name), tensor, name);
      await assert.rejects(cli('convert', folder), /to-convert\/adapter_model\.safetensors: already exists, and loading reads it before adapter_model\.bin; pass --force to replace it/);
      await cli('convert', folder, '--force');
    });

    it('merges and generates as its twin does', async () => {
      const { stdout } = await cli('merge', join(BIN, 'adapter'), '--out', join(dir, 'merged'), '--json');
      const report = JSON.parse(stdout) as { mergedModules: number; maxAbsLogitDiff: number };
      assert.equal(report.mergedModules, 8);
      assert.ok(report.maxAbsLogitDiff < 1e-4, `merge check ${report.maxAbsLogitDiff}`);
      const generate = async (adapter: string) =>
        JSON.parse((await cli('generate', join('examples', 'tiny-model'), '--prompt', 'The whale', '--adapter', adapter, '--max-new-tokens', '6', '--backend', 'wasm', '--json')).stdout) as { tokens: number[] };
      assert.deepEqual((await generate(join(BIN, 'adapter'))).tokens, (await generate(await safetensorsTwin())).tokens);
    });

    it('a folder without weights says which files it looked for', async () => {
      const empty = join(dir, 'no-weights');
      await mkdir(empty);
      await copyFile(join(BIN, 'adapter', 'adapter_config.json'), join(empty, 'adapter_config.json'));
      await assert.rejects(loadAdapter(empty), /no-weights: holds neither adapter_model\.safetensors nor adapter_model\.bin/);
    });
  });

  describe('tensors the config does not account for', () => {
    it('mixers in every module of a config without lora_use_mixer are applied as MoSLoRA, with a note', async () => {
      const { path, adapters } = await foreignAdapter('unsaid', (config) => {
        delete config.lora_use_mixer;
        delete config.moslora;
      });
      const loaded = await loadAdapter(path);
      assert.equal(loaded.settings.method, 'moslora');
      assert.match(loaded.notes.join('\n'), /adapter_config\.json does not set "lora_use_mixer", but .*adapter_model\.safetensors holds a mixer \(lora_AB\) for each of its 2 modules: applied as MoSLoRA/);
      for (const [module, { spec, weights }] of adapters) {
        const back = loaded.adapters.get(module)!;
        assert.ok(maxAbsDiff(deltaWeight(back.spec, back.weights), deltaWeight(spec, weights)) < 1e-6, module);
      }
      const { stdout, stderr } = await cli('export', path, '--out', join(dir, 'unsaid-peft'), '--json');
      assert.match(stderr, /note: .*applied as MoSLoRA/);
      assert.deepEqual(JSON.parse(stdout), {
        outDir: join(dir, 'unsaid-peft'),
        modules: 2,
        quantisation: { status: 'not-quantised', basePrecision: 'float32', reason: UNRECORDED_PRECISION },
      });
      const exported = await loadAdapter(join(dir, 'unsaid-peft'));
      const q = exported.adapters.get(Q)!;
      assert.ok(maxAbsDiff(deltaWeight(q.spec, q.weights), deltaWeight(adapters.get(Q)!.spec, adapters.get(Q)!.weights)) < 1e-6, 'the export folds the mixer in');
    });

    it('mixers a config calls plain LoRA are refused, named, with the fix', async () => {
      const { path } = await foreignAdapter('said-lora', (config) => {
        config.lora_use_mixer = false;
        delete config.moslora;
      });
      await assert.rejects(
        loadAdapter(path),
        new RegExp(
          'said-lora/adapter_model\\.safetensors: holds 2 mixer tensors \\("base_model\\.model\\.model\\.layers\\.0\\.self_attn\\.q_proj\\.lora_AB\\.weight", ' +
            '"base_model\\.model\\.model\\.layers\\.0\\.self_attn\\.v_proj\\.lora_AB\\.weight"\\), but .*adapter_config\\.json says plain LoRA \\("lora_use_mixer": false\\); ' +
            'to apply them as MoSLoRA set "lora_use_mixer": true there, or remove them to load plain LoRA',
        ),
      );
      await assert.rejects(cli('merge', path, '--model', join(FIXTURES, 'models', 'tiny-llama'), '--out', join(dir, 'never')), /holds 2 mixer tensors/);
      const { path: block } = await foreignAdapter('said-lora-block', (config) => {
        config.moslora = { method: 'lora' };
      });
      await assert.rejects(loadAdapter(block), /says plain LoRA \("moslora": \{"method": "lora"\}\); to apply them as MoSLoRA set "moslora": \{"method": "moslora"\} there/);
    });

    it('mixers in only some modules are refused, naming the modules without one', async () => {
      const { path } = await foreignAdapter('partial', (config) => {
        delete config.lora_use_mixer;
        delete config.moslora;
      });
      const file = join(path, 'adapter_model.safetensors');
      const tensors = await readTensors(file);
      tensors.delete(`base_model.model.${V}.lora_AB.weight`);
      await writeSafetensors(file, [...tensors].map(([name, { shape, values }]) => ({ name, dtype: 'F32' as const, shape, data: values })));
      await assert.rejects(loadAdapter(path), /holds 1 mixer tensor \(.*q_proj\.lora_AB\.weight"\), which .* does not mention .* \("model\.layers\.0\.self_attn\.v_proj" has none\)/);
    });

    it('a tensor the adapter would not use is refused by name', async () => {
      const { path } = await foreignAdapter('extra', () => undefined);
      const file = join(path, 'adapter_model.safetensors');
      const tensors = await readTensors(file);
      const stray = `base_model.model.${Q}.lora_AB.1.weight`;
      tensors.set(stray, { dtype: 'F32', shape: [4, 4], values: new Float32Array(16) });
      await writeSafetensors(file, [...tensors].map(([name, { shape, values }]) => ({ name, dtype: 'F32' as const, shape, data: values })));
      await assert.rejects(loadAdapter(path), new RegExp(`"${stray.replaceAll('.', '\\.')}" is not part of a moslora adapter as .*adapter_config\\.json describes it; fix the config \\(moslora\\.method, moslora\\.chain_length\\) or remove it`));
      tensors.delete(stray);
      tensors.set(`base_model.model.${Q}.lora_magnitude_vector`, { dtype: 'F32', shape: [12], values: new Float32Array(12) });
      await writeSafetensors(file, [...tensors].map(([name, { shape, values }]) => ({ name, dtype: 'F32' as const, shape, data: values })));
      await assert.rejects(
        loadAdapter(path),
        /holds 1 DoRA magnitude vector \("base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_magnitude_vector"\), but .*adapter_config\.json does not set "use_dora": true; set it to load the adapter as DoRA/,
      );
    });
  });

  it('merge on a model folder without tokenizer.json writes the model and checks it (exit 0)', async () => {
    const model = join(dir, 'no-tokenizer');
    await cp(join(FIXTURES, 'models', 'tiny-llama'), model, { recursive: true });
    await rm(join(model, 'tokenizer.json'));
    await rm(join(model, 'tokenizer_config.json'));
    const { stdout } = await cli('merge', join(FIXTURES, 'peft', 'tiny-llama-moslora', 'adapter'), '--model', model, '--out', join(dir, 'merged-no-tokenizer'), '--backend', 'wasm', '--json');
    const report = JSON.parse(stdout) as { mergedModules: number; maxAbsLogitDiff: number };
    assert.equal(report.mergedModules, 14);
    assert.ok(report.maxAbsLogitDiff < 1e-4, `merge check ${report.maxAbsLogitDiff}`);
  });

  describe('what a PEFT export names', () => {
    it('the base model: a hub id from config.json or the cache folder, else the folder name; never a local path', async () => {
      const withId = join(dir, 'models', 'local-copy');
      await mkdir(withId, { recursive: true });
      await writeFile(join(withId, 'config.json'), JSON.stringify({ _name_or_path: 'Qwen/Qwen2-0.5B' }));
      assert.equal((await peftBaseModel(withId, withId)).name, 'Qwen/Qwen2-0.5B');
      const cache = join(dir, 'hub', 'models--HuggingFaceTB--SmolLM2-135M', 'snapshots', '93efa2f097d58c2a74874c7e644dbc9b0cee75a2');
      await mkdir(cache, { recursive: true });
      await writeFile(join(cache, 'config.json'), JSON.stringify({ _name_or_path: '/home/someone/models/smol' }));
      assert.equal((await peftBaseModel(cache, cache)).name, 'HuggingFaceTB/SmolLM2-135M');
      const plain = join(FIXTURES, 'models', 'tiny-llama');
      const named = await peftBaseModel(plain, plain);
      assert.equal(named.name, 'tiny-llama');
      assert.match(named.source, /the name of the base model folder .*tiny-llama, whose config\.json names no hub id/);
      assert.equal((await peftBaseModel('meta-llama/Llama-3.2-1B', join(dir, 'nowhere'))).name, 'meta-llama/Llama-3.2-1B');
      assert.equal((await peftBaseModel('/gone/models/my-model', '/gone/models/my-model')).name, 'my-model');
      const { stdout } = await cli('export', join(FIXTURES, 'peft', 'tiny-llama-moslora', 'adapter'), '--out', join(dir, 'named'));
      assert.match(stdout, /base_model_name_or_path: "tiny-llama", the name of the base model folder .*test\/fixtures\/models\/tiny-llama/);
      const config = JSON.parse(await readFile(join(dir, 'named', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(config.base_model_name_or_path, 'tiny-llama');
    });

    it("GPT-2: exactly the modules the file holds, so PEFT's suffix match selects no module without weights", async () => {
      const gpt2 = join(FIXTURES, 'models', 'tiny-gpt2');
      const { layout } = await readModelLayout(gpt2);
      // c_attn in both layers and the MLP's c_proj, not the attention's: `c_proj` alone names both
      const held = layout.linears.filter((m) => m.name.endsWith('attn.c_attn') || m.name.endsWith('mlp.c_proj'));
      const adapters = new Map<string, Adapter>(
        held.map((m, i) => {
          const spec = resolveAdapterSpec({ method: 'lora', dIn: m.dIn, dOut: m.dOut, r: 2, alpha: 4 });
          return [m.name, { spec, weights: initAdapterWeights(spec, i) }];
        }),
      );
      const settings: AdapterSettings = {
        baseModel: gpt2, method: 'lora', r: 2, alpha: 4, dropout: 0, useRslora: false, mixerInit: 'kaiming', chainLength: 2, targetModules: ['c_attn', 'c_proj'], fanInFanOut: true,
      };
      await exportPeft(join(dir, 'gpt2-peft'), adapters, settings, gpt2);
      const config = JSON.parse(await readFile(join(dir, 'gpt2-peft', 'adapter_config.json'), 'utf8')) as { target_modules: string[] };
      // PEFT's check_target_module_exists for a list: the name itself or a dotted suffix of it
      const selected = layout.linears.map((m) => m.name).filter((name) => config.target_modules.some((key) => name === key || name.endsWith(`.${key}`)));
      assert.deepEqual(selected.sort(), [...adapters.keys()].sort());
      for (const { weights } of adapters.values()) tf.dispose([weights.A, weights.B]);
    });
  });
});
