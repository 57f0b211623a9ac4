// Tiny random checkpoints written on the fly, for tests that need a model of a given shape
// rather than one with reference outputs (those are in test/fixtures/models/).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../../server/formats/safetensors';
import { parseModelConfig } from '../../server/models/config';
import { expectedTensors } from '../../server/models/modules';

/** The tiny model the project ships (examples/tiny-model). */
export const TINY_MODEL = join(import.meta.dirname, '..', '..', 'examples', 'tiny-model');

export const TINY_LLAMA_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  vocab_size: 48,
  hidden_size: 32,
  intermediate_size: 40,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 64,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'float32',
};

export const TINY_GPT2_CONFIG = {
  architectures: ['GPT2LMHeadModel'],
  vocab_size: 48,
  n_embd: 32,
  n_layer: 2,
  n_head: 4,
  n_positions: 32,
  layer_norm_epsilon: 1e-5,
  activation_function: 'gelu_new',
  bos_token_id: 0,
  eos_token_id: 0,
};

/** Deterministic values in (−scale, scale). */
function values(count: number, seed: number, scale: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 2 ** 32 - 0.5) * 2 * scale;
  });
}

/**
 * A model folder with config.json and random weights in the shapes the config implies
 * (norm weights near 1). Returns the folder.
 */
export async function writeTinyModel(config: Record<string, unknown>, seed = 1): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'tiny-model-'));
  await writeFile(join(folder, 'config.json'), JSON.stringify(config));
  const tensors: TensorToWrite[] = expectedTensors(parseModelConfig(config, 'config.json')).map(({ name, shape }, i) => {
    const isNorm = /(norm|ln_\w+)\.weight$/.test(name);
    const data = values(shape.reduce((a, b) => a * b, 1), seed * 1000 + i, isNorm ? 0.1 : 0.3).map((v) => (isNorm ? 1 + v : v));
    return { name, dtype: 'F32', shape, data };
  });
  await writeSafetensors(join(folder, 'model.safetensors'), tensors);
  return folder;
}
