// The Llama family (Llama, Mistral, Qwen2, SmolLM) as transformers' LlamaForCausalLM computes it:
// pre-norm blocks with RMSNorm, rotary positions, grouped-query attention and a SwiGLU MLP.

import * as tf from '@tensorflow/tfjs-core';
import { rmsNorm } from '../../kernels/ops/rms-norm';
import { applyRope } from '../../kernels/ops/rope';
import { swiglu } from '../../kernels/ops/swiglu';
import type { LlamaConfig } from './config';
import {
  attention,
  causalMask,
  decoderBlock,
  embed,
  linear,
  ropeInverseFrequencies,
  ropeTables,
  splitHeads,
  type Embedding,
  type ForwardOptions,
  type LoadedLinear,
  type LoadedTensors,
  type TokenIds,
} from './layers';

interface LlamaBlock {
  inputNorm: tf.Tensor1D;
  q: LoadedLinear;
  k: LoadedLinear;
  v: LoadedLinear;
  o: LoadedLinear;
  postNorm: tf.Tensor1D;
  gate: LoadedLinear;
  up: LoadedLinear;
  down: LoadedLinear;
}

export interface LlamaWeights {
  embed: Embedding;
  blocks: LlamaBlock[];
  norm: tf.Tensor1D;
  lmHead: LoadedLinear;
  /** RoPE's θ^(−2i/d), [head_dim / 2]. */
  inverseFrequencies: Float32Array;
}

/** Arranges the loaded tensors and linear modules into blocks. */
export function llamaWeights(config: LlamaConfig, { tensor, module, embedding }: LoadedTensors): LlamaWeights {
  const blocks = Array.from({ length: config.numLayers }, (_, i): LlamaBlock => {
    const p = `model.layers.${i}`;
    return {
      inputNorm: tensor(`${p}.input_layernorm.weight`) as tf.Tensor1D,
      q: module(`${p}.self_attn.q_proj`),
      k: module(`${p}.self_attn.k_proj`),
      v: module(`${p}.self_attn.v_proj`),
      o: module(`${p}.self_attn.o_proj`),
      postNorm: tensor(`${p}.post_attention_layernorm.weight`) as tf.Tensor1D,
      gate: module(`${p}.mlp.gate_proj`),
      up: module(`${p}.mlp.up_proj`),
      down: module(`${p}.mlp.down_proj`),
    };
  });
  return {
    embed: embedding('model.embed_tokens.weight'),
    blocks,
    norm: tensor('model.norm.weight') as tf.Tensor1D,
    lmHead: module('lm_head'),
    inverseFrequencies: ropeInverseFrequencies(config),
  };
}

/** inputIds [B, T] (int32) → logits [B, T, vocab]. */
export function llamaForward(c: LlamaConfig, w: LlamaWeights, inputIds: TokenIds, options: ForwardOptions): tf.Tensor3D {
  const [, T] = inputIds.tensor.shape;
  const past = options.cache?.length ?? 0;
  const { cos, sin } = ropeTables(w.inverseFrequencies, past, T); // (T, hd) each
  const mask = causalMask(T, past, c.slidingWindow); // (T, past + T)
  let x = embed(w.embed, inputIds); // (B, T, C)
  w.blocks.forEach((block, layer) => {
    const modules = [block.q, block.k, block.v, block.o, block.gate, block.up, block.down];
    x = decoderBlock(x, [cos, sin, mask], modules, options, (x, [cos, sin, mask]) => {
      // attention: x + o(attn(rope(q), rope(k), v)) on the normed input
      const h = rmsNorm(x, block.inputNorm, c.rmsNormEps);
      const q = applyRope(splitHeads(linear(h, block.q, options), c.numHeads), cos as tf.Tensor2D, sin as tf.Tensor2D); // (B, nh, T, hd)
      let k = applyRope(splitHeads(linear(h, block.k, options), c.numKvHeads), cos as tf.Tensor2D, sin as tf.Tensor2D); // (B, nkv, T, hd)
      let v = splitHeads(linear(h, block.v, options), c.numKvHeads); // (B, nkv, T, hd)
      if (options.cache) ({ k, v } = options.cache.extend(layer, k, v)); // (B, nkv, past + T, hd)
      const a = tf.add<tf.Tensor3D>(x, linear(attention(q, k, v, mask as tf.Tensor2D), block.o, options)); // (B, T, C)
      // SwiGLU MLP: a + down(silu(gate(m)) · up(m))
      const m = rmsNorm(a, block.postNorm, c.rmsNormEps);
      const hidden = swiglu(linear(m, block.gate, options), linear(m, block.up, options)); // (B, T, intermediate)
      return tf.add<tf.Tensor3D>(a, linear(hidden, block.down, options)); // (B, T, C)
    });
  });
  return linear(rmsNorm(x, w.norm, c.rmsNormEps), w.lmHead, options); // (B, T, vocab)
}
