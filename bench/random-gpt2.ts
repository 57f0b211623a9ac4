// A GPT-2-shaped checkpoint with random weights, written in the Hugging Face layout
// (GPT2LMHeadModel: Conv1D weights stored [in, out], tied embeddings), for benchmarks of the
// GPT-2 path without a download.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite, type WritableDtype } from '../server/formats/safetensors';
import { randomNormals } from './random-llama';

export interface Gpt2Shape {
  hidden: number;
  layers: number;
  heads: number;
  inner: number;
  vocab: number;
  positions: number;
}

/** GPT-2 small's layers, heads and modules at a quarter of its width and a small vocabulary: the same kernels a step, on small tensors (~5.6M parameters). */
export const GPT2_SMALL_NARROW: Gpt2Shape = { hidden: 192, layers: 12, heads: 12, inner: 768, vocab: 1024, positions: 1024 };

/** Writes config.json and one model.safetensors with N(0, 0.02) weights, zero biases and unit norms. */
export async function writeRandomGpt2(dir: string, shape: Gpt2Shape, dtype: WritableDtype, seed = 1): Promise<void> {
  await mkdir(dir, { recursive: true });
  const normal = randomNormals(seed);
  const C = shape.hidden;
  const tensors: TensorToWrite[] = [];
  const add = (name: string, dims: number[], data: Float32Array) => tensors.push({ name, dtype, shape: dims, data });
  const norm = (name: string) => {
    add(`${name}.weight`, [C], new Float32Array(C).fill(1));
    add(`${name}.bias`, [C], new Float32Array(C));
  };
  const conv1d = (name: string, dIn: number, dOut: number) => {
    add(`${name}.weight`, [dIn, dOut], normal(dIn * dOut));
    add(`${name}.bias`, [dOut], new Float32Array(dOut));
  };
  add('transformer.wte.weight', [shape.vocab, C], normal(shape.vocab * C));
  add('transformer.wpe.weight', [shape.positions, C], normal(shape.positions * C));
  for (let i = 0; i < shape.layers; i++) {
    const p = `transformer.h.${i}`;
    norm(`${p}.ln_1`);
    conv1d(`${p}.attn.c_attn`, C, 3 * C);
    conv1d(`${p}.attn.c_proj`, C, C);
    norm(`${p}.ln_2`);
    conv1d(`${p}.mlp.c_fc`, C, shape.inner);
    conv1d(`${p}.mlp.c_proj`, shape.inner, C);
  }
  norm('transformer.ln_f');
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  const config = {
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: C, n_layer: shape.layers, n_head: shape.heads, n_inner: shape.inner,
    n_positions: shape.positions, vocab_size: shape.vocab, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', tie_word_embeddings: true,
    bos_token_id: 0, eos_token_id: 0, torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'BF16' ? 'bfloat16' : 'float16',
  };
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}
