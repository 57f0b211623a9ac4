// GPT-2 as transformers' GPT2LMHeadModel computes it: learned positions, pre-norm blocks with
// LayerNorm, one fused q/k/v projection (c_attn), a gelu_new MLP, Conv1D weights stored [in, out].

import * as tf from '@tensorflow/tfjs-core';
import { geluNew } from '../../kernels/ops/gelu';
import { layerNorm } from '../../kernels/ops/layer-norm';
import type { Gpt2Config } from './config';
import { attention, causalMask, decoderBlock, embed, linear, splitHeads, type Embedding, type ForwardOptions, type LoadedLinear, type LoadedTensors, type TokenIds } from './layers';

interface Norm {
  weight: tf.Tensor1D;
  bias: tf.Tensor1D;
}

interface Gpt2Block {
  ln1: Norm;
  cAttn: LoadedLinear;
  attnProj: LoadedLinear;
  ln2: Norm;
  cFc: LoadedLinear;
  mlpProj: LoadedLinear;
}

export interface Gpt2Weights {
  wte: Embedding;
  wpe: tf.Tensor2D; // [n_positions, C]
  blocks: Gpt2Block[];
  lnF: Norm;
  lmHead: LoadedLinear;
}

/** Arranges the loaded tensors and linear modules into blocks. */
export function gpt2Weights(config: Gpt2Config, { tensor, module, embedding }: LoadedTensors): Gpt2Weights {
  const norm = (name: string): Norm => ({
    weight: tensor(`${name}.weight`) as tf.Tensor1D,
    bias: tensor(`${name}.bias`) as tf.Tensor1D,
  });
  const blocks = Array.from({ length: config.numLayers }, (_, i): Gpt2Block => {
    const p = `transformer.h.${i}`;
    return {
      ln1: norm(`${p}.ln_1`),
      cAttn: module(`${p}.attn.c_attn`),
      attnProj: module(`${p}.attn.c_proj`),
      ln2: norm(`${p}.ln_2`),
      cFc: module(`${p}.mlp.c_fc`),
      mlpProj: module(`${p}.mlp.c_proj`),
    };
  });
  return {
    wte: embedding('transformer.wte.weight'),
    wpe: tensor('transformer.wpe.weight') as tf.Tensor2D,
    blocks,
    lnF: norm('transformer.ln_f'),
    lmHead: module('lm_head'),
  };
}

/** inputIds [B, T] (int32) → logits [B, T, vocab]. */
export function gpt2Forward(c: Gpt2Config, w: Gpt2Weights, inputIds: TokenIds, options: ForwardOptions): tf.Tensor3D {
  const [, T] = inputIds.tensor.shape;
  const past = options.cache?.length ?? 0;
  const mask = causalMask(T, past, null); // (T, past + T)
  const positions = tf.range(past, past + T, 1, 'int32');
  let x = tf.add(embed(w.wte, inputIds), tf.gather(w.wpe, positions)) as tf.Tensor3D; // (B, T, C)
  w.blocks.forEach((block, layer) => {
    x = decoderBlock(x, [mask], [block.cAttn, block.attnProj, block.cFc, block.mlpProj], options, (x, [mask]) => {
      // attention: x + c_proj(attn(q, k, v)), with q, k, v the three thirds of c_attn
      const h = layerNorm(x, block.ln1.weight, block.ln1.bias, c.layerNormEps);
      const [q, k0, v0] = tf.split(linear(h, block.cAttn, options), 3, -1).map((t) => splitHeads(t as tf.Tensor3D, c.numHeads)); // (B, nh, T, hd)
      let k = k0!;
      let v = v0!;
      if (options.cache) ({ k, v } = options.cache.extend(layer, k, v)); // (B, nh, past + T, hd)
      const a = tf.add<tf.Tensor3D>(x, linear(attention(q!, k, v, mask as tf.Tensor2D), block.attnProj, options)); // (B, T, C)
      // MLP: a + c_proj(gelu_new(c_fc(m)))
      const m = layerNorm(a, block.ln2.weight, block.ln2.bias, c.layerNormEps);
      return tf.add<tf.Tensor3D>(a, linear(geluNew(linear(m, block.cFc, options)), block.mlpProj, options)); // (B, T, C)
    });
  });
  return linear(layerNorm(x, w.lnF.weight, w.lnF.bias, c.layerNormEps), w.lmHead, options); // (B, T, vocab)
}
