// A Hugging Face config.json, read into the typed config of one of the supported architectures.
// Fields a transformers config class gives a default are optional here with the same default;
// the fields that fix the shapes of the weights are required.

import { join } from 'node:path';
import { FileReadError, jsonErrorPlace, jsonProblem, readTextFile } from '../formats/files';
import { preview } from '../formats/preview';

export const CONFIG_FILE = 'config.json';
/** A model's config.json is a few KB; the largest (multimodal models') some 100 KB. */
const MAX_CONFIG_BYTES = 1024 * 1024;

export const LLAMA_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'] as const;
export const GPT2_ARCHITECTURES = ['GPT2LMHeadModel'] as const;
export const SUPPORTED_ARCHITECTURES = [...LLAMA_ARCHITECTURES, ...GPT2_ARCHITECTURES] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

interface BaseConfig {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Per attention head; hidden_size / num_attention_heads unless the config says otherwise. */
  headDim: number;
  maxPositions: number;
  /** lm_head reuses the token embedding matrix. */
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  /** Generation stops at any of these; a config may give one id or a list. */
  eosTokenIds: number[];
  /** The dtype the checkpoint was saved in, as the config says ('bfloat16', …), if it says. */
  torchDtype: string | null;
}

/** How RoPE frequencies are rescaled for longer contexts (config "rope_scaling"). */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

/** A model's width, depth, attention heads and vocabulary. */
export interface ModelShape {
  hidden: number;
  layers: number;
  heads: number;
  vocab: number;
}

/** Llama, Mistral, Qwen2 (and SmolLM, which is a Llama): RMSNorm, RoPE, SwiGLU, GQA. */
export interface LlamaConfig extends BaseConfig {
  family: 'llama';
  intermediateSize: number;
  /** < numHeads for grouped-query attention; each K/V head serves numHeads / numKvHeads query heads. */
  numKvHeads: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** Biases on q_proj, k_proj, v_proj (Qwen2 always; Llama with attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama with attention_bias; never Qwen2). */
  outputBias: boolean;
  /** Biases on gate_proj, up_proj, down_proj (Llama with mlp_bias). */
  mlpBias: boolean;
  /** Mistral: a query sees only the last slidingWindow keys (itself included); null for full attention. */
  slidingWindow: number | null;
}

/** GPT-2: LayerNorm, learned positions, gelu_new, Conv1D weights stored [in, out]. */
export interface Gpt2Config extends BaseConfig {
  family: 'gpt2';
  /** Width of the MLP's hidden layer (n_inner, default 4·n_embd). */
  innerSize: number;
  layerNormEps: number;
}

export type ModelConfig = LlamaConfig | Gpt2Config;

export class ModelConfigError extends Error {
  constructor(
    readonly file: string,
    readonly key: string | null,
    readonly problem: string,
  ) {
    super(`${file}: ${key === null ? '' : `"${key}" `}${problem}`);
    this.name = 'ModelConfigError';
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads typed fields of one JSON object, naming the file and key in every error. */
class Fields {
  constructor(
    readonly file: string,
    private readonly json: Json,
    private readonly prefix = '',
  ) {}

  fail(key: string, problem: string): never {
    throw new ModelConfigError(this.file, this.prefix + key, problem);
  }

  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  isNull(key: string): boolean {
    return this.json[key] === null;
  }

  private value(key: string, expected: string): unknown {
    const value = this.json[key];
    if (value === undefined || value === null) this.fail(key, `is missing; it must be ${expected}`);
    return value;
  }

  positiveInt(key: string, fallback?: number): number {
    if (fallback !== undefined && !this.has(key)) return fallback;
    const value = this.value(key, 'a positive integer');
    if (!Number.isSafeInteger(value) || (value as number) <= 0) this.fail(key, `must be a positive integer, got ${preview(value)}`);
    return value as number;
  }

  positiveNumber(key: string, fallback?: number): number {
    if (fallback !== undefined && !this.has(key)) return fallback;
    const value = this.value(key, 'a positive number');
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      this.fail(key, `must be a positive number, got ${preview(value)}`);
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const value = this.json[key];
    if (typeof value !== 'boolean') this.fail(key, `must be true or false, got ${preview(value)}`);
    return value;
  }

  string(key: string): string {
    const value = this.value(key, 'a string');
    if (typeof value !== 'string') this.fail(key, `must be a string, got ${preview(value)}`);
    return value;
  }

  optionalString(key: string): string | null {
    return this.has(key) ? this.string(key) : null;
  }

  /** A token id, or null when absent (some models have no BOS token). */
  tokenId(key: string): number | null {
    if (!this.has(key)) return null;
    const value = this.json[key];
    if (!Number.isSafeInteger(value) || (value as number) < 0) this.fail(key, `must be a token id (an integer ≥ 0), got ${preview(value)}`);
    return value as number;
  }

  /** One token id or a list of them (eos_token_id). */
  tokenIds(key: string): number[] {
    if (!this.has(key)) return [];
    const value = this.json[key];
    const ids = Array.isArray(value) ? value : [value];
    if (!ids.every((id) => Number.isSafeInteger(id) && (id as number) >= 0)) {
      this.fail(key, `must be a token id or a list of token ids, got ${preview(value)}`);
    }
    return ids as number[];
  }

  object(key: string): Fields | null {
    if (!this.has(key)) return null;
    const value = this.json[key];
    if (!isObject(value)) this.fail(key, `must be an object, got ${preview(value)}`);
    return new Fields(this.file, value, `${this.prefix}${key}.`);
  }
}

function architectureOf(fields: Fields, json: Json): Architecture {
  const supported = `supported: ${SUPPORTED_ARCHITECTURES.join(', ')}`;
  const listed = json.architectures;
  if (!Array.isArray(listed) || listed.length === 0 || !listed.every((a) => typeof a === 'string')) {
    fields.fail('architectures', `must be a list naming the model class, e.g. ["LlamaForCausalLM"], got ${preview(listed)}; ${supported}`);
  }
  const found = (listed as string[]).find((a) => (SUPPORTED_ARCHITECTURES as readonly string[]).includes(a));
  if (!found) {
    fields.fail('architectures', `${preview(listed)} is not supported; ${supported}`);
  }
  return found as Architecture;
}

// The transformers config classes' defaults, for configs that leave the key out.
const DEFAULT_MAX_POSITIONS: Record<Architecture, number> = {
  LlamaForCausalLM: 2048,
  MistralForCausalLM: 4096 * 32,
  Qwen2ForCausalLM: 32768,
  GPT2LMHeadModel: 1024,
};
const MISTRAL_DEFAULT_SLIDING_WINDOW = 4096;

function baseConfig(fields: Fields, architecture: Architecture, keys: { hidden: string; layers: string; heads: string; positions: string }, tieDefault: boolean): BaseConfig {
  const hiddenSize = fields.positiveInt(keys.hidden);
  const numHeads = fields.positiveInt(keys.heads);
  if (!fields.has('head_dim') && hiddenSize % numHeads !== 0) {
    fields.fail(keys.hidden, `${hiddenSize} is not divisible by ${keys.heads} = ${numHeads}; give "head_dim" or fix the config`);
  }
  return {
    architecture,
    vocabSize: fields.positiveInt('vocab_size'),
    hiddenSize,
    numLayers: fields.positiveInt(keys.layers),
    numHeads,
    headDim: fields.positiveInt('head_dim', hiddenSize / numHeads),
    maxPositions: fields.positiveInt(keys.positions, DEFAULT_MAX_POSITIONS[architecture]),
    tieWordEmbeddings: fields.boolean('tie_word_embeddings', tieDefault),
    bosTokenId: fields.tokenId('bos_token_id'),
    eosTokenIds: fields.tokenIds('eos_token_id'),
    // transformers ≥ 4.56 writes "dtype"; earlier versions wrote "torch_dtype".
    torchDtype: fields.optionalString('dtype') ?? fields.optionalString('torch_dtype'),
  };
}

// transformers ≥ 5 keeps rope_theta and the scaling in "rope_parameters"; earlier versions use
// "rope_theta" and "rope_scaling" at the top level.
function ropeOf(fields: Fields, architecture: Architecture): { ropeTheta: number; ropeScaling: RopeScaling | null } {
  const parameters = fields.object('rope_parameters');
  const scaling = parameters ?? fields.object('rope_scaling');
  const defaultTheta = architecture === 'Qwen2ForCausalLM' ? 1_000_000 : 10_000;
  const ropeTheta = parameters?.has('rope_theta') ? parameters.positiveNumber('rope_theta') : fields.positiveNumber('rope_theta', defaultTheta);
  if (!scaling) return { ropeTheta, ropeScaling: null };
  const typeKey = scaling.has('rope_type') ? 'rope_type' : 'type';
  const type = scaling.has(typeKey) ? scaling.string(typeKey) : 'default';
  switch (type) {
    case 'default':
      return { ropeTheta, ropeScaling: null };
    case 'linear':
      return { ropeTheta, ropeScaling: { type, factor: scaling.positiveNumber('factor') } };
    case 'llama3':
      return {
        ropeTheta,
        ropeScaling: {
          type,
          factor: scaling.positiveNumber('factor'),
          lowFreqFactor: scaling.positiveNumber('low_freq_factor'),
          highFreqFactor: scaling.positiveNumber('high_freq_factor'),
          originalMaxPositions: scaling.positiveInt('original_max_position_embeddings'),
        },
      };
    default:
      return scaling.fail(typeKey, `${preview(type)} is not supported; supported: default, linear, llama3`);
  }
}

function llamaConfig(fields: Fields, architecture: (typeof LLAMA_ARCHITECTURES)[number]): LlamaConfig {
  const base = baseConfig(fields, architecture, { hidden: 'hidden_size', layers: 'num_hidden_layers', heads: 'num_attention_heads', positions: 'max_position_embeddings' }, false);
  const numKvHeads = fields.positiveInt('num_key_value_heads', base.numHeads);
  if (base.numHeads % numKvHeads !== 0) {
    fields.fail('num_key_value_heads', `${numKvHeads} does not divide num_attention_heads = ${base.numHeads}`);
  }
  if (fields.has('hidden_act') && fields.string('hidden_act') !== 'silu') {
    fields.fail('hidden_act', `${preview(fields.string('hidden_act'))} is not supported; the Llama family uses "silu"`);
  }
  const isQwen2 = architecture === 'Qwen2ForCausalLM';
  const attentionBias = !isQwen2 && fields.boolean('attention_bias', false);
  if (isQwen2 && fields.boolean('use_sliding_window', false)) {
    fields.fail('use_sliding_window', 'true is not supported (Qwen2 applies it to some layers only); set it to false');
  }
  // MistralConfig defaults to a 4096-token window; an explicit null turns it off.
  const slidingWindow =
    architecture !== 'MistralForCausalLM' || fields.isNull('sliding_window') ? null : fields.positiveInt('sliding_window', MISTRAL_DEFAULT_SLIDING_WINDOW);
  return {
    ...base,
    family: 'llama',
    intermediateSize: fields.positiveInt('intermediate_size'),
    numKvHeads,
    rmsNormEps: fields.positiveNumber('rms_norm_eps', 1e-6),
    ...ropeOf(fields, architecture),
    qkvBias: isQwen2 || attentionBias,
    outputBias: attentionBias,
    mlpBias: !isQwen2 && fields.boolean('mlp_bias', false),
    slidingWindow,
  };
}

const GPT2_ACTIVATIONS = ['gelu_new', 'gelu_pytorch_tanh'];

function gpt2Config(fields: Fields): Gpt2Config {
  const base = baseConfig(fields, 'GPT2LMHeadModel', { hidden: 'n_embd', layers: 'n_layer', heads: 'n_head', positions: 'n_positions' }, true);
  const activation = fields.has('activation_function') ? fields.string('activation_function') : 'gelu_new';
  if (!GPT2_ACTIVATIONS.includes(activation)) {
    fields.fail('activation_function', `${preview(activation)} is not supported; supported: ${GPT2_ACTIVATIONS.join(', ')} (the same tanh approximation)`);
  }
  if (!fields.boolean('scale_attn_weights', true)) fields.fail('scale_attn_weights', 'false is not supported; GPT-2 scales attention by 1/√head_dim');
  if (fields.boolean('scale_attn_by_inverse_layer_idx', false)) fields.fail('scale_attn_by_inverse_layer_idx', 'true is not supported');
  return {
    ...base,
    family: 'gpt2',
    innerSize: fields.positiveInt('n_inner', 4 * base.hiddenSize),
    layerNormEps: fields.positiveNumber('layer_norm_epsilon', 1e-5),
  };
}

/** The typed config of a parsed config.json; `file` names it in errors. */
export function parseModelConfig(json: unknown, file: string): ModelConfig {
  if (!isObject(json)) throw new ModelConfigError(file, null, 'must be a JSON object');
  const fields = new Fields(file, json);
  const architecture = architectureOf(fields, json);
  return (LLAMA_ARCHITECTURES as readonly string[]).includes(architecture)
    ? llamaConfig(fields, architecture as (typeof LLAMA_ARCHITECTURES)[number])
    : gpt2Config(fields);
}

/** Reads and parses `<modelDir>/config.json`. */
export async function loadModelConfig(modelDir: string): Promise<ModelConfig> {
  const file = join(modelDir, CONFIG_FILE);
  let text: string;
  try {
    text = await readTextFile(file, "a model's config.json", MAX_CONFIG_BYTES);
  } catch (error) {
    if (!(error instanceof FileReadError)) throw error;
    const missing = (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    throw new ModelConfigError(error.path, null, `${error.problem}${missing ? '; a Hugging Face model folder holds config.json beside its weights' : ''}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ModelConfigError(`${file}${jsonErrorPlace(text, error)}`, null, `is not valid JSON: ${jsonProblem(error)}`);
  }
  return parseModelConfig(json, file);
}
