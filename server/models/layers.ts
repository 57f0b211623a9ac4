// The pieces both architectures are built from: linear layers that take adapters, norms, RoPE,
// masked multi-head attention with grouped K/V heads, and the KV cache used in generation.

import * as tf from '@tensorflow/tfjs-core';
import { attentionSoftmax } from '../../kernels/ops/attention-softmax';
import { checkpointed } from '../../kernels/ops/checkpoint';
import { matMul } from '../../kernels/ops/matmul';
import { adaptedLinear, type Adapter, type BaseLinear } from '../../kernels/adapter/linear';
import { nativeGather } from '../../kernels/base/native-weights';
import type { PackedMatrix } from '../../kernels/base/quant';
import { quantGatherRows, type GpuPackedMatrix } from '../../kernels/base/webgpu-quant';
import type { LlamaConfig } from './config';

/** Adapters by module name ('model.layers.3.self_attn.q_proj'); modules not in it run frozen. */
export type AdapterSet = ReadonlyMap<string, Adapter>;

export interface ForwardOptions {
  adapters?: AdapterSet;
  /** Applies adapter dropout. */
  training?: boolean;
  /** Seeds the dropout masks (see moduleDropoutSeed). */
  dropoutSeed?: number;
  /** The index of these ids' first row in the whole batch (kernels/adapter/linear.ts AdaptedLinearOptions). */
  firstSequence?: number;
  /** Reuses and extends the keys and values of earlier calls (generation). */
  cache?: KVCache;
  /**
   * While training, keeps only each block's input for the backward pass and recomputes the
   * rest there (gradient checkpointing): activation memory falls from every block's
   * activations to one block's, for about one more forward pass of time.
   */
  checkpoint?: boolean;
}

/** A linear module with its frozen weights, shared by every adapter set. */
export interface LoadedLinear {
  name: string;
  /** Position in the model's module list. */
  index: number;
  base: BaseLinear;
}

// More modules than any supported model has (an 80-layer Llama has 561).
const MAX_MODULES = 4096;

/**
 * The dropout seed of module i in a call seeded s: s + i/4096, exact in float64, so no two
 * (call, module) pairs share a mask even when callers number their calls s, s + 1, ….
 */
export function moduleDropoutSeed(dropoutSeed: number, index: number): number {
  return dropoutSeed + index / MAX_MODULES;
}

/** The frozen tensors of a checkpoint, as an architecture's weight builder asks for them. */
export interface LoadedTensors {
  /** A tensor by its transformers name. */
  tensor(name: string): tf.Tensor;
  /** A linear module by its module name. */
  module(name: string): LoadedLinear;
  embedding(name: string): Embedding;
}

/**
 * A token embedding table: a tensor [vocab, C], or [C, vocab] when it is also a tied lm_head held
 * in_out; or a matrix [vocab, C] in the native weight store, or on the GPU.
 */
export type Embedding = { table: tf.Tensor2D; byColumns: boolean } | { packed: PackedMatrix } | { gpu: GpuPackedMatrix };

/**
 * Token ids [B, T]: the int32 tensor, and the same ids on the host where the caller gave them as
 * numbers (null where it gave only the tensor). A table on the GPU checks them there before its
 * gather, which reads them nowhere else.
 */
export interface TokenIds {
  tensor: tf.Tensor2D;
  values: Int32Array | null;
}

/** The embeddings of ids [B, T] → [B, T, C]. */
export function embed(embedding: Embedding, ids: TokenIds): tf.Tensor3D {
  if ('packed' in embedding) return nativeGather(embedding.packed, ids.tensor) as tf.Tensor3D;
  if ('gpu' in embedding) {
    if (!ids.values) throw new Error('input_ids: the embedding table is on the GPU, whose gather checks the ids on the host: give them as rows of numbers, not as a tensor');
    return quantGatherRows(embedding.gpu, ids.tensor, ids.values) as tf.Tensor3D;
  }
  if (!embedding.byColumns) return tf.gather(embedding.table, ids.tensor) as tf.Tensor as tf.Tensor3D; // (B, T, C)
  return tf.transpose(tf.gather(embedding.table, ids.tensor, 1) as tf.Tensor as tf.Tensor3D, [1, 2, 0]); // (C, B, T) → (B, T, C)
}

/** x → x·Wᵀ + b (+ the module's adapter, if the set has one), for x of shape [..., d_in]. */
export function linear<R extends tf.Rank>(x: tf.Tensor<R>, module: LoadedLinear, options: ForwardOptions): tf.Tensor<R> {
  const adapter = options.adapters?.get(module.name) ?? null;
  const dropoutSeed = options.dropoutSeed === undefined ? undefined : moduleDropoutSeed(options.dropoutSeed, module.index);
  return adaptedLinear(x, module.base, adapter, { training: options.training ?? false, dropoutSeed, ...(options.firstSequence === undefined ? {} : { firstSequence: options.firstSequence }) });
}

/**
 * One decoder block, x → body(x, context), checkpointed when the options ask for it while
 * training. `context` holds the tensors body reads besides x and the model's weights (RoPE
 * tables, the mask); `modules` are the block's linear modules, whose adapters body applies.
 */
export function decoderBlock(
  x: tf.Tensor3D,
  context: tf.Tensor[],
  modules: readonly LoadedLinear[],
  options: ForwardOptions,
  body: (x: tf.Tensor3D, context: tf.Tensor[]) => tf.Tensor3D,
): tf.Tensor3D {
  if (!options.checkpoint || !options.training || options.cache) return body(x, context);
  const weights = modules.flatMap((m) => {
    const adapter = options.adapters?.get(m.name);
    if (!adapter) return [];
    const { A, B, mixers, magnitude } = adapter.weights;
    return [A, B, ...mixers, ...(magnitude ? [magnitude] : [])];
  });
  return checkpointed(body, x, context, weights.filter((t) => t instanceof tf.Variable && t.trainable));
}

const f32 = Math.fround;

/**
 * RoPE's inverse frequencies θ^(−2i/d) for i < d/2, rescaled as the config says. Computed with
 * float32 rounding at each step, as transformers computes them, so positions agree to the last bit.
 */
export function ropeInverseFrequencies(config: LlamaConfig): Float32Array {
  const d = config.headDim;
  const inv = Float32Array.from({ length: d / 2 }, (_, i) => f32(1 / f32(Math.pow(config.ropeTheta, f32((2 * i) / d)))));
  const scaling = config.ropeScaling;
  if (scaling?.type === 'linear') return inv.map((f) => f32(f / scaling.factor));
  if (scaling?.type === 'llama3') {
    // transformers' _compute_llama3_parameters: long wavelengths are divided by the factor, short
    // ones kept, and those in between interpolated.
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
    const lowFreqWavelen = originalMaxPositions / lowFreqFactor;
    const highFreqWavelen = originalMaxPositions / highFreqFactor;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highFreqWavelen) return f;
      if (wavelen > lowFreqWavelen) return f32(f / factor);
      const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      return f32((1 - smooth) * (f / factor) + smooth * f);
    });
  }
  return inv;
}

/** cos and sin of position·frequency for positions start … start+T−1, each [T, head_dim] (the halves repeat). */
export function ropeTables(inverseFrequencies: Float32Array, start: number, T: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = inverseFrequencies.length;
  const cos = new Float32Array(T * 2 * half);
  const sin = new Float32Array(T * 2 * half);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = f32((start + t) * inverseFrequencies[i]!);
      for (const j of [t * 2 * half + i, t * 2 * half + half + i]) {
        cos[j] = Math.cos(angle);
        sin[j] = Math.sin(angle);
      }
    }
  }
  return { cos: tf.tensor2d(cos, [T, 2 * half]), sin: tf.tensor2d(sin, [T, 2 * half]) };
}

// Added to the scores of masked keys. exp(−1e9 − max) is exactly 0 in float32, as with
// transformers' finfo.min, and unlike −∞ it cannot turn a sum into NaN.
const MASKED = -1e9;

/**
 * The additive causal mask [T, S] for T new queries after `past` cached tokens (S = past + T):
 * query t sees key s when s ≤ past + t, and, with a sliding window w, past + t − s < w.
 */
export function causalMask(T: number, past: number, slidingWindow: number | null): tf.Tensor2D {
  const S = past + T;
  const mask = new Float32Array(T * S);
  for (let t = 0; t < T; t++) {
    for (let s = 0; s < S; s++) {
      const visible = s <= past + t && (slidingWindow === null || past + t - s < slidingWindow);
      if (!visible) mask[t * S + s] = MASKED;
    }
  }
  return tf.tensor2d(mask, [T, S]);
}

/**
 * softmax(q·kᵀ/√d + mask)·v over heads, for q [B, nh, T, hd] and k, v [B, nkv, S, hd] where
 * nkv divides nh: query head h reads K/V head ⌊h / (nh/nkv)⌋, as transformers' repeat_kv, but
 * without copying K and V: the nh/nkv query heads of a group are stacked along T instead.
 * Returns [B, T, nh·hd].
 */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor2D): tf.Tensor3D {
  const [B, nh, T, hd] = q.shape;
  const [, nkv, S] = k.shape;
  const qg = tf.reshape(q, [B, nkv, (nh / nkv) * T, hd]); // (B, nkv, group·T, hd)
  const scores = tf.reshape<tf.Rank.R4>(matMul(qg, k, false, true), [B, nh, T, S]); // (B, nh, T, S)
  const weights = tf.reshape(attentionSoftmax(scores, mask, 1 / Math.sqrt(hd)), [B, nkv, (nh / nkv) * T, S]);
  const y = tf.reshape(matMul(weights, v), [B, nh, T, hd]); // (B, nh, T, hd)
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, nh * hd]); // (B, T, nh·hd)
}

/** [B, T, heads·hd] → [B, heads, T, hd] */
export function splitHeads(x: tf.Tensor3D, heads: number): tf.Tensor4D {
  const [B, T, width] = x.shape;
  return tf.transpose(tf.reshape(x, [B, T, heads, width / heads]), [0, 2, 1, 3]);
}

/**
 * Keys and values of the tokens seen so far, per layer, [B, nkv, S, hd] each. Held outside any
 * tidy; `dispose()` frees them.
 */
export class KVCache {
  private readonly layers: { k: tf.Tensor4D; v: tf.Tensor4D }[] = [];

  /** Tokens cached per sequence. */
  get length(): number {
    return this.layers[0]?.k.shape[2] ?? 0;
  }

  /** Appends one layer's new keys and values [B, nkv, T, hd]; returns all of them [B, nkv, S, hd]. */
  extend(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): { k: tf.Tensor4D; v: tf.Tensor4D } {
    const old = this.layers[layer];
    const next = old ? { k: tf.concat([old.k, k], 2), v: tf.concat([old.v, v], 2) } : { k, v };
    tf.keep(next.k);
    tf.keep(next.v);
    if (old) tf.dispose([old.k, old.v]);
    this.layers[layer] = next;
    return next;
  }

  dispose(): void {
    for (const { k, v } of this.layers.splice(0)) tf.dispose([k, v]);
  }
}
