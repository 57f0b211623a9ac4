// Text generation from a prompt: greedy, or temperature + top-p sampling from a seeded generator,
// one token per step over a KV cache, until an end-of-sequence token or max_new_tokens.

import * as tf from '@tensorflow/tfjs-core';
import { doraWeightNorms, type Adapter } from '../../kernels/adapter/linear';
import { takeValues } from '../../kernels/backends/read';
import { KVCache, type AdapterSet } from './layers';
import type { CausalLM } from './model';
import type { ModelTokenizer } from './tokenizer';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 (the default) picks the most likely token; above 0 samples from softmax(logits / temperature). */
  temperature?: number;
  /** Samples only from the most likely tokens whose probabilities sum to top_p (default 1: all). */
  topP?: number;
  /** Seeds the sampler: the same seed gives the same tokens. */
  seed?: number;
  /** Stops after any of these (included in the output); defaults to the config's eos_token_id. */
  eosTokenIds?: readonly number[];
  adapters?: AdapterSet;
  /** false recomputes the whole sequence at every step: slower, the reference the cache is tested against. */
  useCache?: boolean;
}

export interface Generation {
  /** The new tokens, without the prompt. */
  tokens: number[];
  stoppedBy: 'eos' | 'max_new_tokens';
}

/** mulberry32: a small, fast, seeded generator of uniforms in [0, 1). */
function uniforms(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

/** The first index of the largest logit, as torch.argmax. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/**
 * Samples from softmax(logits / temperature) restricted to the top-p nucleus: the most likely
 * tokens, in order, while the probability before each is below topP (so at least one is kept),
 * as transformers' TopPLogitsWarper.
 */
export function sampleTopP(logits: Float32Array, temperature: number, topP: number, uniform: number): number {
  const max = logits.reduce((a, b) => Math.max(a, b), -Infinity);
  const weights = Array.from(logits, (l) => Math.exp((l - max) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  const order = weights.map((_, i) => i).sort((a, b) => weights[b]! - weights[a]! || a - b);
  const nucleus: number[] = [];
  let before = 0;
  for (const i of order) {
    if (before >= topP * total) break;
    nucleus.push(i);
    before += weights[i]!;
  }
  let threshold = uniform * before;
  for (const i of nucleus) {
    threshold -= weights[i]!;
    if (threshold < 0) return i;
  }
  return nucleus[nucleus.length - 1]!;
}

function checkOptions(options: GenerateOptions): void {
  const { maxNewTokens, temperature = 0, topP = 1 } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new Error(`max_new_tokens: must be a positive integer, got ${maxNewTokens}`);
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new Error(`temperature: must be 0 (greedy) or positive, got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`top_p: must be in (0, 1], got ${topP}`);
}

/** Continues `prompt` by up to maxNewTokens tokens. */
export async function generate(model: CausalLM, prompt: readonly number[], options: GenerateOptions): Promise<Generation> {
  checkOptions(options);
  const { maxNewTokens, temperature = 0, topP = 1, seed = 0, useCache = true } = options;
  const eos = options.eosTokenIds ?? model.config.eosTokenIds;
  const uniform = uniforms(seed);
  const cache = useCache ? new KVCache() : undefined;
  const tokens: number[] = [];
  const norms: tf.Tensor[] = [];
  try {
    const adapters = options.adapters && withFixedNorms(model, options.adapters, norms);
    let input = [...prompt];
    while (tokens.length < maxNewTokens) {
      const last = tf.tidy(() => {
        const logits = model.forward([input], { adapters, cache }); // (1, T, vocab)
        return tf.reshape(tf.slice(logits, [0, logits.shape[1] - 1, 0], [1, 1, -1]), [-1]); // (vocab)
      });
      const values = (await takeValues(last)) as Float32Array;
      const next = temperature === 0 ? argmax(values) : sampleTopP(values, temperature, topP, uniform());
      tokens.push(next);
      if (eos.includes(next)) return { tokens, stoppedBy: 'eos' };
      input = useCache ? [next] : [...prompt, ...tokens];
    }
    return { tokens, stoppedBy: 'max_new_tokens' };
  } finally {
    cache?.dispose();
    tf.dispose(norms);
  }
}

/**
 * The adapters with DoRA's norms computed once (added to `made`): they depend only on the
 * weights, which do not change while generating, and computing them costs d_out·d_in·r per
 * module, r times a token's product with the module's weight.
 */
function withFixedNorms(model: CausalLM, adapters: AdapterSet, made: tf.Tensor[]): AdapterSet {
  const fixed = new Map<string, Adapter>();
  for (const [name, adapter] of adapters) {
    if (!adapter.spec.useDora) {
      fixed.set(name, adapter);
      continue;
    }
    const fixedNorms = doraWeightNorms(model.base(name), adapter.spec, adapter.weights);
    made.push(fixedNorms);
    fixed.set(name, { ...adapter, fixedNorms });
  }
  return fixed;
}

/**
 * A text prompt as `moslora generate` (and so Try Adapter) runs it: encoded after the BOS token
 * where the model has one, continued, and the new tokens decoded without special tokens.
 */
export async function generateText(model: CausalLM, tokenizer: ModelTokenizer, text: string, options: GenerateOptions): Promise<Generation & { text: string }> {
  const prompt = [...(tokenizer.bosTokenId === null ? [] : [tokenizer.bosTokenId]), ...tokenizer.encode(text)];
  const result = await generate(model, prompt, options);
  return { ...result, text: tokenizer.decode(result.tokens, { skipSpecialTokens: true }) };
}
