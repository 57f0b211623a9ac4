// Reading config.json (server/models/config.ts) for Llama, Qwen2, Mistral and GPT-2: derived values
// and defaults, RoPE scaling as transformers computes it, and errors naming the file and the key.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadModelConfig, ModelConfigError, parseModelConfig, SUPPORTED_ARCHITECTURES } from '../../server/models/config';
import { ropeInverseFrequencies } from '../../server/models/layers';
import { TINY_GPT2_CONFIG, TINY_LLAMA_CONFIG } from '../helpers/tiny-models';

const FILE = '/models/x/config.json';

function rejects(json: unknown, key: string | null, ...fragments: string[]): void {
  assert.throws(
    () => parseModelConfig(json, FILE),
    (error: unknown) => {
      assert.ok(error instanceof ModelConfigError, `expected ModelConfigError, got ${String(error)}`);
      assert.equal(error.key, key);
      assert.ok(error.message.startsWith(`${FILE}: `), error.message);
      if (key !== null) assert.ok(error.message.includes(`"${key}"`), `"${error.message}" does not name "${key}"`);
      for (const fragment of fragments) assert.ok(error.message.includes(fragment), `"${error.message}" lacks "${fragment}"`);
      return true;
    },
  );
}

describe('model config', () => {
  it('quotes a bad value short, and describes one nested too deeply to print', () => {
    rejects({ ...TINY_LLAMA_CONFIG, hidden_size: JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) }, 'hidden_size', 'must be a positive integer, got a list nested too deeply to show');
    rejects({ ...TINY_LLAMA_CONFIG, hidden_size: 'x'.repeat(10_000) }, 'hidden_size', `must be a positive integer, got "${'x'.repeat(56)}...`);
  });

  it('reads a Llama config, deriving head_dim and defaults', () => {
    const config = parseModelConfig(TINY_LLAMA_CONFIG, FILE);
    assert.equal(config.family, 'llama');
    if (config.family !== 'llama') return;
    assert.deepEqual(
      {
        architecture: config.architecture,
        hidden: config.hiddenSize,
        headDim: config.headDim,
        kv: config.numKvHeads,
        eps: config.rmsNormEps,
        theta: config.ropeTheta,
        tie: config.tieWordEmbeddings,
        bias: [config.qkvBias, config.outputBias, config.mlpBias],
        eos: config.eosTokenIds,
        bos: config.bosTokenId,
        dtype: config.torchDtype,
        window: config.slidingWindow,
      },
      {
        architecture: 'LlamaForCausalLM',
        hidden: 32,
        headDim: 8,
        kv: 2,
        eps: 1e-6,
        theta: 10000,
        tie: false,
        bias: [false, false, false],
        eos: [2],
        bos: 1,
        dtype: 'float32',
        window: null,
      },
    );
  });

  it('gives Qwen2 biases on q, k, v only, and reads head_dim, eos lists and "dtype"', () => {
    const config = parseModelConfig(
      { ...TINY_LLAMA_CONFIG, architectures: ['Qwen2ForCausalLM'], head_dim: 16, eos_token_id: [2, 3], torch_dtype: undefined, dtype: 'bfloat16' },
      FILE,
    );
    assert.ok(config.family === 'llama');
    assert.deepEqual([config.qkvBias, config.outputBias, config.mlpBias, config.headDim], [true, false, false, 16]);
    assert.deepEqual(config.eosTokenIds, [2, 3]);
    assert.equal(config.torchDtype, 'bfloat16');
  });

  it('gives Llama attention_bias to q, k, v and o, and Mistral its default sliding window', () => {
    const llama = parseModelConfig({ ...TINY_LLAMA_CONFIG, attention_bias: true, mlp_bias: true }, FILE);
    assert.ok(llama.family === 'llama');
    assert.deepEqual([llama.qkvBias, llama.outputBias, llama.mlpBias], [true, true, true]);
    const mistral = parseModelConfig({ ...TINY_LLAMA_CONFIG, architectures: ['MistralForCausalLM'] }, FILE);
    assert.ok(mistral.family === 'llama');
    assert.equal(mistral.slidingWindow, 4096);
    const unwindowed = parseModelConfig({ ...TINY_LLAMA_CONFIG, architectures: ['MistralForCausalLM'], sliding_window: null }, FILE);
    assert.ok(unwindowed.family === 'llama');
    assert.equal(unwindowed.slidingWindow, null);
  });

  it('reads a GPT-2 config with its defaults (tied, n_inner = 4·n_embd)', () => {
    const config = parseModelConfig(TINY_GPT2_CONFIG, FILE);
    assert.ok(config.family === 'gpt2');
    assert.deepEqual(
      [config.hiddenSize, config.numLayers, config.numHeads, config.headDim, config.maxPositions, config.innerSize, config.layerNormEps, config.tieWordEmbeddings],
      [32, 2, 4, 8, 32, 128, 1e-5, true],
    );
  });

  it('reads rope_scaling (llama3) and transformers 5 rope_parameters', () => {
    const scaled = parseModelConfig(
      {
        ...TINY_LLAMA_CONFIG,
        rope_theta: 500000,
        rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
      },
      FILE,
    );
    assert.ok(scaled.family === 'llama');
    assert.deepEqual(scaled.ropeScaling, { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    const v5 = parseModelConfig({ ...TINY_LLAMA_CONFIG, rope_theta: undefined, rope_parameters: { rope_theta: 1e6, rope_type: 'default' } }, FILE);
    assert.ok(v5.family === 'llama');
    assert.deepEqual([v5.ropeTheta, v5.ropeScaling], [1e6, null]);
    rejects({ ...TINY_LLAMA_CONFIG, rope_scaling: { type: 'yarn', factor: 4 } }, 'rope_scaling.type', '"yarn" is not supported', 'linear, llama3');
  });

  it('scales RoPE frequencies as transformers does for llama3: long wavelengths divided, short kept', () => {
    const base = { ...TINY_LLAMA_CONFIG, hidden_size: 512, num_attention_heads: 4, rope_theta: 500000 };
    const plain = parseModelConfig(base, FILE);
    const scaled = parseModelConfig(
      { ...base, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } },
      FILE,
    );
    assert.ok(plain.family === 'llama' && scaled.family === 'llama');
    const f = ropeInverseFrequencies(plain);
    const g = ropeInverseFrequencies(scaled);
    assert.equal(f[0], 1);
    for (let i = 0; i < f.length; i++) {
      const wavelen = (2 * Math.PI) / f[i]!;
      if (wavelen < 8192 / 4) assert.equal(g[i], f[i]);
      else if (wavelen > 8192) assert.equal(g[i], Math.fround(f[i]! / 8));
      else assert.ok(g[i]! < f[i]! && g[i]! > f[i]! / 8, `frequency ${i} is interpolated`);
    }
  });

  it('names the file, the architecture found and the supported list for an unsupported model', () => {
    rejects({ ...TINY_LLAMA_CONFIG, architectures: ['FalconForCausalLM'] }, 'architectures', '["FalconForCausalLM"] is not supported', SUPPORTED_ARCHITECTURES.join(', '));
    rejects({ ...TINY_LLAMA_CONFIG, architectures: undefined }, 'architectures', 'must be a list', 'LlamaForCausalLM');
  });

  it('names a missing or ill-typed key', () => {
    rejects({ ...TINY_LLAMA_CONFIG, hidden_size: undefined }, 'hidden_size', 'is missing', 'positive integer');
    rejects({ ...TINY_LLAMA_CONFIG, num_hidden_layers: '2' }, 'num_hidden_layers', 'must be a positive integer, got "2"');
    rejects({ ...TINY_LLAMA_CONFIG, rms_norm_eps: -1 }, 'rms_norm_eps', 'must be a positive number, got -1');
    rejects({ ...TINY_LLAMA_CONFIG, tie_word_embeddings: 'yes' }, 'tie_word_embeddings', 'true or false');
    rejects({ ...TINY_LLAMA_CONFIG, eos_token_id: [2, 'x'] }, 'eos_token_id', 'token id');
    rejects({ ...TINY_LLAMA_CONFIG, num_key_value_heads: 3 }, 'num_key_value_heads', '3 does not divide num_attention_heads = 4');
    rejects({ ...TINY_LLAMA_CONFIG, hidden_size: 30 }, 'hidden_size', 'not divisible by num_attention_heads = 4');
    rejects({ ...TINY_LLAMA_CONFIG, hidden_act: 'gelu' }, 'hidden_act', '"silu"');
    rejects({ ...TINY_GPT2_CONFIG, n_embd: undefined }, 'n_embd', 'is missing');
    rejects({ ...TINY_GPT2_CONFIG, activation_function: 'relu' }, 'activation_function', 'gelu_new');
    rejects({ ...TINY_LLAMA_CONFIG, architectures: ['Qwen2ForCausalLM'], use_sliding_window: true }, 'use_sliding_window', 'set it to false');
    rejects([1, 2], null, 'must be a JSON object');
  });

  it('loads config.json from a folder, naming the file when it is absent or not JSON', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'config-test-'));
    try {
      await assert.rejects(loadModelConfig(dir), (error: Error) => error instanceof ModelConfigError && error.message.startsWith(join(dir, 'config.json')));
      await writeFile(join(dir, 'config.json'), '{"architectures": [');
      await assert.rejects(loadModelConfig(dir), /config\.json:1:20: is not valid JSON: the text ends before the JSON does$/, 'a file cut short: its end');
      await writeFile(join(dir, 'config.json'), '{\n  "architectures": ["x"\n');
      await assert.rejects(loadModelConfig(dir), /config\.json:3:1: is not valid JSON: expected ',' or '\]' after array element$/, 'the line and column where the parser stopped');
      await writeFile(join(dir, 'config.json'), JSON.stringify(TINY_GPT2_CONFIG));
      assert.equal((await loadModelConfig(dir)).architecture, 'GPT2LMHeadModel');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
