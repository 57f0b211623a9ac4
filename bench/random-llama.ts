// A Llama-shaped checkpoint with random weights, written in the Hugging Face layout, for
// benchmarks that need a realistic size without a download (default ≈ 110M parameters).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { writeSafetensors, type TensorToWrite, type WritableDtype } from '../server/formats/safetensors';
import type { LinearModule } from '../server/models/modules';

export interface LlamaShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  /** lm_head has a weight of its own (tie_word_embeddings: false); absent: tied to the embedding. */
  untied?: boolean;
}

export const LLAMA_100M: LlamaShape = { hidden: 768, layers: 12, heads: 12, kvHeads: 4, intermediate: 2048, vocab: 32000 };
/** LLAMA_100M's layers, heads and modules at a quarter of its width and a small vocabulary: the same kernels a step, on small tensors (~3.6M parameters). */
export const LLAMA_100M_NARROW: LlamaShape = { hidden: 192, layers: 12, heads: 12, kvHeads: 4, intermediate: 512, vocab: 1024 };

export function llamaLinearModules(shape: LlamaShape): LinearModule[] {
  const kv = (shape.hidden / shape.heads) * shape.kvHeads;
  const out: LinearModule[] = [];
  for (let i = 0; i < shape.layers; i++) {
    const p = `model.layers.${i}`;
    const add = (name: string, dIn: number, dOut: number) => out.push({ name: `${p}.${name}`, weight: `${p}.${name}.weight`, bias: null, dIn, dOut, layout: 'out_in' });
    add('self_attn.q_proj', shape.hidden, shape.hidden);
    add('self_attn.k_proj', shape.hidden, kv);
    add('self_attn.v_proj', shape.hidden, kv);
    add('self_attn.o_proj', shape.hidden, shape.hidden);
    add('mlp.gate_proj', shape.hidden, shape.intermediate);
    add('mlp.up_proj', shape.hidden, shape.intermediate);
    add('mlp.down_proj', shape.intermediate, shape.hidden);
  }
  return out;
}

export function llamaParameterCount(shape: LlamaShape): number {
  return llamaLinearModules(shape).reduce((n, m) => n + m.dIn * m.dOut, 0) + (shape.untied ? 2 : 1) * shape.vocab * shape.hidden + (2 * shape.layers + 1) * shape.hidden;
}

/** Draws N(0, 0.02) values, n at a time, from a generator seeded `seed` (Box–Muller). */
export function randomNormals(seed: number): (n: number) => Float32Array {
  const random = seedrandom(String(seed));
  return (n) => {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - random()));
      const t = 2 * Math.PI * random();
      data[i] = 0.02 * r * Math.cos(t);
      if (i + 1 < n) data[i + 1] = 0.02 * r * Math.sin(t);
    }
    return data;
  };
}

/** The embedding, and lm_head's weight when the shape has its own, with N(0, 0.02) values. */
function embeddings(shape: LlamaShape, dtype: WritableDtype, normal: (n: number) => Float32Array): TensorToWrite[] {
  const names = shape.untied ? ['model.embed_tokens.weight', 'lm_head.weight'] : ['model.embed_tokens.weight'];
  return names.map((name) => ({ name, dtype, shape: [shape.vocab, shape.hidden], data: normal(shape.vocab * shape.hidden) }));
}

/** Writes config.json and one model.safetensors with N(0, 0.02) weights. */
export async function writeRandomLlama(dir: string, shape: LlamaShape, dtype: WritableDtype, seed = 1): Promise<void> {
  await mkdir(dir, { recursive: true });
  const normal = randomNormals(seed);
  const tensors: TensorToWrite[] = embeddings(shape, dtype, normal);
  for (const m of llamaLinearModules(shape)) tensors.push({ name: `${m.name}.weight`, dtype, shape: [m.dOut, m.dIn], data: normal(m.dIn * m.dOut) });
  const ones = (n: number) => new Float32Array(n).fill(1);
  for (let i = 0; i < shape.layers; i++) {
    tensors.push({ name: `model.layers.${i}.input_layernorm.weight`, dtype, shape: [shape.hidden], data: ones(shape.hidden) });
    tensors.push({ name: `model.layers.${i}.post_attention_layernorm.weight`, dtype, shape: [shape.hidden], data: ones(shape.hidden) });
  }
  tensors.push({ name: 'model.norm.weight', dtype, shape: [shape.hidden], data: ones(shape.hidden) });
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  await writeLlamaConfig(dir, shape, dtype);
}

/** Qwen2.5's shapes (tied embeddings; its q, k, v biases left out), for the benchmarks of real model sizes. */
export const QWEN2_5_SHAPES: Record<string, LlamaShape> = {
  'qwen2.5-0.5b': { hidden: 896, layers: 24, heads: 14, kvHeads: 2, intermediate: 4864, vocab: 151936 },
  'qwen2.5-1.5b': { hidden: 1536, layers: 28, heads: 12, kvHeads: 2, intermediate: 8960, vocab: 151936 },
  'qwen2.5-3b': { hidden: 2048, layers: 36, heads: 16, kvHeads: 2, intermediate: 11008, vocab: 151936 },
};

/** Llama-3.1-8B's shape (lm_head untied). */
export const LLAMA_3_1_8B: LlamaShape = { hidden: 4096, layers: 32, heads: 32, kvHeads: 8, intermediate: 14336, vocab: 128256, untied: true };

/**
 * writeRandomLlama's model as shards, one per decoder layer and one for the embedding and the
 * final norm, with model.safetensors.index.json: billions of parameters written with one
 * shard's values in memory at a time.
 */
export async function writeRandomLlamaShards(dir: string, shape: LlamaShape, dtype: WritableDtype, seed = 1): Promise<void> {
  await mkdir(dir, { recursive: true });
  const normal = randomNormals(seed);
  const ones = (n: number) => new Float32Array(n).fill(1);
  const weightMap: Record<string, string> = {};
  const shards = shape.layers + 1;
  const shardName = (i: number) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
  const write = async (i: number, tensors: TensorToWrite[]) => {
    for (const t of tensors) weightMap[t.name] = shardName(i);
    await writeSafetensors(join(dir, shardName(i)), tensors, { format: 'pt' });
  };
  await write(0, [...embeddings(shape, dtype, normal), { name: 'model.norm.weight', dtype, shape: [shape.hidden], data: ones(shape.hidden) }]);
  const modules = llamaLinearModules(shape);
  for (let layer = 0; layer < shape.layers; layer++) {
    const p = `model.layers.${layer}`;
    const tensors: TensorToWrite[] = modules.filter((m) => m.name.startsWith(`${p}.`)).map((m) => ({ name: `${m.name}.weight`, dtype, shape: [m.dOut, m.dIn], data: normal(m.dIn * m.dOut) }));
    tensors.push({ name: `${p}.input_layernorm.weight`, dtype, shape: [shape.hidden], data: ones(shape.hidden) });
    tensors.push({ name: `${p}.post_attention_layernorm.weight`, dtype, shape: [shape.hidden], data: ones(shape.hidden) });
    await write(layer + 1, tensors);
  }
  await writeFile(join(dir, 'model.safetensors.index.json'), `${JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 2)}\n`);
  await writeLlamaConfig(dir, shape, dtype);
}

async function writeLlamaConfig(dir: string, shape: LlamaShape, dtype: WritableDtype): Promise<void> {
  const config = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: shape.hidden, intermediate_size: shape.intermediate,
    num_hidden_layers: shape.layers, num_attention_heads: shape.heads, num_key_value_heads: shape.kvHeads, vocab_size: shape.vocab,
    max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: !shape.untied, hidden_act: 'silu',
    bos_token_id: 1, eos_token_id: 2, torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'BF16' ? 'bfloat16' : 'float16',
  };
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}
