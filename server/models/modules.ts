// The parameters each architecture reads from a checkpoint, named as transformers names them, and
// their shapes checked against config.json from the safetensors headers alone (no weights read).
// Linear modules carry the names that target_modules, completion, heatmaps and exports use.

import { packedBytes, type BaseFormat, type BaseFormats } from '../../kernels/base/quant';
import { Checkpoint } from '../formats/checkpoint';
import { unknownTensorProblem } from '../formats/names';
import { FLOAT32_READABLE_DTYPES } from '../formats/safetensors';
import { loadModelConfig, type Gpt2Config, type LlamaConfig, type ModelConfig } from './config';
import { compileTargetPattern } from './target-pattern';

/** What a checkpoint's header says of one tensor. */
export interface TensorHeader {
  dtype: string;
  shape: readonly number[];
}
export type TensorTable = ReadonlyMap<string, TensorHeader>;

/** One frozen linear layer: y = x·Wᵀ + b. */
export interface LinearModule {
  /** The module's name in the transformers model, e.g. 'model.layers.3.self_attn.q_proj'. */
  name: string;
  /** The tensor holding W, as stored (a tied lm_head names the embedding). */
  weight: string;
  bias: string | null;
  /**
   * How the checkpoint stores W (what merges and PEFT's fan_in_fan_out need): 'out_in' is
   * nn.Linear's [d_out, d_in], 'in_out' GPT-2's Conv1D [d_in, d_out]. A loaded CausalLM holds
   * every weight in_out (see CausalLM.load).
   */
  layout: 'out_in' | 'in_out';
  dOut: number;
  dIn: number;
}

/** A linear module's name and size: what adapters and the editor's checks need of it. */
export type ModuleSize = Pick<LinearModule, 'name' | 'dIn' | 'dOut'>;

/** One tensor the model reads, with the shape config.json implies. */
export interface ParameterTensor {
  /** As transformers names it, e.g. 'transformer.wte.weight'. */
  name: string;
  /** As stored in the checkpoint, e.g. 'wte.weight' in the original GPT-2 files. */
  tensor: string;
  shape: number[];
}

export interface ModelLayout {
  /** Every linear module, in forward order; lm_head last. */
  linears: LinearModule[];
  /** Every tensor the model reads, each once (a tied lm_head adds none). */
  parameters: ParameterTensor[];
}

export class CheckpointLayoutError extends Error {
  constructor(
    readonly source: string,
    readonly problem: string,
  ) {
    super(`${source}: ${problem}`);
    this.name = 'CheckpointLayoutError';
  }
}

interface LinearDef {
  name: string;
  dOut: number;
  dIn: number;
  bias: boolean;
}

/** Canonical names and shapes, before they are checked against a checkpoint. */
interface LayoutDef {
  linears: (LinearDef & { layout: LinearModule['layout']; weight?: string })[];
  others: { name: string; shape: number[] }[];
}

function llamaLayout(c: LlamaConfig): LayoutDef {
  const C = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const linears: LayoutDef['linears'] = [];
  const others: LayoutDef['others'] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, C] }];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    others.push({ name: `${p}.input_layernorm.weight`, shape: [C] }, { name: `${p}.post_attention_layernorm.weight`, shape: [C] });
    for (const [name, dOut, dIn, bias] of [
      ['self_attn.q_proj', qDim, C, c.qkvBias],
      ['self_attn.k_proj', kvDim, C, c.qkvBias],
      ['self_attn.v_proj', kvDim, C, c.qkvBias],
      ['self_attn.o_proj', C, qDim, c.outputBias],
      ['mlp.gate_proj', c.intermediateSize, C, c.mlpBias],
      ['mlp.up_proj', c.intermediateSize, C, c.mlpBias],
      ['mlp.down_proj', C, c.intermediateSize, c.mlpBias],
    ] as const) {
      linears.push({ name: `${p}.${name}`, dOut, dIn, bias, layout: 'out_in' });
    }
  }
  others.push({ name: 'model.norm.weight', shape: [C] });
  const lmHead = { name: 'lm_head', dOut: c.vocabSize, dIn: C, bias: false, layout: 'out_in' as const };
  linears.push(c.tieWordEmbeddings ? { ...lmHead, weight: 'model.embed_tokens.weight' } : lmHead);
  return { linears, others };
}

function gpt2Layout(c: Gpt2Config): LayoutDef {
  const C = c.hiddenSize;
  const linears: LayoutDef['linears'] = [];
  const others: LayoutDef['others'] = [
    { name: 'transformer.wte.weight', shape: [c.vocabSize, C] },
    { name: 'transformer.wpe.weight', shape: [c.maxPositions, C] },
  ];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `transformer.h.${i}`;
    for (const norm of ['ln_1', 'ln_2']) {
      others.push({ name: `${p}.${norm}.weight`, shape: [C] }, { name: `${p}.${norm}.bias`, shape: [C] });
    }
    for (const [name, dOut, dIn] of [
      ['attn.c_attn', 3 * C, C],
      ['attn.c_proj', C, C],
      ['mlp.c_fc', c.innerSize, C],
      ['mlp.c_proj', C, c.innerSize],
    ] as const) {
      linears.push({ name: `${p}.${name}`, dOut, dIn, bias: true, layout: 'in_out' });
    }
  }
  others.push({ name: 'transformer.ln_f.weight', shape: [C] }, { name: 'transformer.ln_f.bias', shape: [C] });
  const lmHead = { name: 'lm_head', dOut: c.vocabSize, dIn: C, bias: false, layout: 'out_in' as const };
  linears.push(c.tieWordEmbeddings ? { ...lmHead, weight: 'transformer.wte.weight' } : lmHead);
  return { linears, others };
}

/**
 * How canonical names map to stored ones. GPT-2 checkpoints saved by the original OpenAI
 * conversion (openai-community/gpt2) leave out the 'transformer.' prefix: 'h.0.attn.c_attn.weight'.
 */
function storedNames(config: ModelConfig, table: TensorTable): (canonical: string) => string {
  const prefix = 'transformer.';
  if (config.family === 'gpt2' && !table.has(`${prefix}wte.weight`) && table.has('wte.weight')) {
    return (name) => (name.startsWith(prefix) ? name.slice(prefix.length) : name);
  }
  return (name) => name;
}

const weightShape = ({ layout, dOut, dIn }: LinearDef & { layout: LinearModule['layout'] }) => (layout === 'out_in' ? [dOut, dIn] : [dIn, dOut]);

/** Every tensor the architecture reads, by its transformers name, with the shape config.json implies. */
export function expectedTensors(config: ModelConfig): { name: string; shape: number[] }[] {
  const def = config.family === 'llama' ? llamaLayout(config) : gpt2Layout(config);
  return [
    ...def.others,
    ...def.linears.flatMap((l) => [
      ...(l.weight === undefined ? [{ name: `${l.name}.weight`, shape: weightShape(l) }] : []),
      ...(l.bias ? [{ name: `${l.name}.bias`, shape: [l.dOut] }] : []),
    ]),
  ];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

const LAYER_KEYS: Record<ModelConfig['family'], string> = { llama: 'num_hidden_layers', gpt2: 'n_layer' };
/** The index of the layer a stored tensor belongs to: model.layers.N. (Llama), transformer.h.N. or h.N. (GPT-2). */
const LAYER_INDEX = /^(?:model\.layers|(?:transformer\.)?h)\.(\d+)\./;

/**
 * The layers the checkpoint holds, counted from its tensor names: config.json's layer count is
 * checked against it before any layout is built from it, so a config.json that claims ten
 * million layers costs a look at the names, not ten million layers' worth of memory.
 */
function storedLayers(table: TensorTable): number {
  const indices = new Set<string>();
  for (const name of table.keys()) {
    const index = LAYER_INDEX.exec(name)?.[1];
    if (index !== undefined) indices.add(index);
  }
  return indices.size;
}

const SHAPE_KEYS: Record<ModelConfig['family'], string> = {
  llama: 'vocab_size, hidden_size, intermediate_size, num_attention_heads, num_key_value_heads, head_dim',
  gpt2: 'vocab_size, n_embd, n_inner, n_positions',
};

/**
 * The model's linear modules and parameters, checked against a checkpoint's header table: every
 * tensor must be present with the shape config.json implies. `source` names the checkpoint in errors.
 */
export function modelLayout(config: ModelConfig, table: TensorTable, source: string): ModelLayout {
  const layers = storedLayers(table);
  if (config.numLayers > layers) {
    throw new CheckpointLayoutError(
      source,
      `config.json's "${LAYER_KEYS[config.family]}" is ${config.numLayers}, but the weights hold ${layers} layer${layers === 1 ? '' : 's'}; the config and the weights are from different models`,
    );
  }
  const def = config.family === 'llama' ? llamaLayout(config) : gpt2Layout(config);
  const stored = storedNames(config, table);
  const parameters: ParameterTensor[] = [];
  const check = (canonical: string, shape: number[]): string => {
    const tensor = stored(canonical);
    const header = table.get(tensor);
    if (!header) {
      throw new CheckpointLayoutError(source, `${unknownTensorProblem(tensor, table.keys())}; ${config.architecture} needs it. Is config.json from the same model as the weights?`);
    }
    if (!(FLOAT32_READABLE_DTYPES as readonly string[]).includes(header.dtype)) {
      throw new CheckpointLayoutError(
        source,
        `tensor ${JSON.stringify(tensor)} is stored as ${header.dtype}; a model's weights are read as ${FLOAT32_READABLE_DTYPES.join(', ')}. Is it a quantized checkpoint? Use the unquantized weights`,
      );
    }
    if (!sameShape(header.shape, shape)) {
      throw new CheckpointLayoutError(
        source,
        `tensor ${JSON.stringify(tensor)} has shape [${header.shape.join(', ')}] but config.json (${SHAPE_KEYS[config.family]}) implies [${shape.join(', ')}]; the config and the weights are from different models`,
      );
    }
    parameters.push({ name: canonical, tensor, shape });
    return tensor;
  };
  for (const { name, shape } of def.others) check(name, shape);
  const linears = def.linears.map((l): LinearModule => ({
    name: l.name,
    weight: l.weight !== undefined ? stored(l.weight) : check(`${l.name}.weight`, weightShape(l)),
    bias: l.bias ? check(`${l.name}.bias`, [l.dOut]) : null,
    layout: l.layout,
    dOut: l.dOut,
    dIn: l.dIn,
  }));
  return { linears, parameters };
}

/** What target_modules selected: the module names, and the entries that matched none. */
export interface TargetMatch {
  modules: string[];
  unmatched: string[];
}

/** PEFT's shorthand for every linear module but the output layer. */
export const ALL_LINEAR = 'all-linear';
const OUTPUT_LAYER = 'lm_head';

/** PEFT's rule for a list entry: it names a module exactly or by a dotted suffix. */
export function matchesTarget(moduleName: string, entry: string): boolean {
  return moduleName === entry || moduleName.endsWith(`.${entry}`);
}

/**
 * Selects modules as PEFT does. A list matches a module whose name equals an entry or ends with
 * '.' + entry ('q_proj' selects every 'model.layers.N.self_attn.q_proj'). A string is a regular
 * expression that must match the whole name (RE2 syntax, see target-pattern.ts), except
 * 'all-linear': every linear module but lm_head. A pattern RE2 refuses throws, naming the key.
 */
export function matchTargetModules(moduleNames: readonly string[], targets: string | readonly string[]): TargetMatch {
  if (typeof targets === 'string') {
    if (targets === ALL_LINEAR) return { modules: moduleNames.filter((name) => name !== OUTPUT_LAYER), unmatched: [] };
    const pattern = compileTargetPattern(targets);
    if (!pattern.ok) throw new Error(`target_modules: ${JSON.stringify(targets)}: ${pattern.problem}`);
    const modules = moduleNames.filter((name) => pattern.matches(name));
    return { modules, unmatched: modules.length === 0 ? [targets] : [] };
  }
  return {
    modules: moduleNames.filter((name) => targets.some((entry) => matchesTarget(name, entry))),
    unmatched: targets.filter((entry) => !moduleNames.some((name) => matchesTarget(name, entry))),
  };
}

/** A model folder's config and layout, from config.json and the safetensors headers; no weights are read. */
export async function readModelLayout(modelDir: string): Promise<{ config: ModelConfig; layout: ModelLayout; tensors: TensorTable }> {
  const config = await loadModelConfig(modelDir);
  const checkpoint = await Checkpoint.open(modelDir);
  try {
    return { config, layout: modelLayout(config, checkpoint.tensors, modelDir), tensors: checkpoint.tensors };
  } finally {
    await checkpoint.close();
  }
}

/** The token embedding's name in each architecture. */
export const EMBEDDING_NAMES = ['model.embed_tokens.weight', 'transformer.wte.weight'] as const;

/** A frozen matrix of the base as the weight stores hold it: [rows, cols] = [d_out, d_in] (an embedding [vocab, C]), at its format. */
export interface StoredMatrix {
  format: BaseFormat;
  rows: number;
  cols: number;
}

/**
 * The matrices `formats` applies to, by tensor, as CausalLM.load stores them: the embedding and
 * lm_head at the embedding's format (a tied lm_head is the embedding, once), every other linear
 * weight at the linear one. The model's other tensors (norms, biases, position embeddings) stay
 * float32.
 */
export function storedMatrices(layout: ModelLayout, formats: BaseFormats): Map<string, StoredMatrix> {
  const byTensor = new Map<string, StoredMatrix>();
  const embedding = layout.parameters.find((p) => (EMBEDDING_NAMES as readonly string[]).includes(p.name));
  if (embedding) byTensor.set(embedding.tensor, { format: formats.embedding, rows: embedding.shape[0]!, cols: embedding.shape[1]! });
  for (const m of layout.linears) {
    if (!byTensor.has(m.weight)) byTensor.set(m.weight, { format: m.name === 'lm_head' ? formats.embedding : formats.linear, rows: m.dOut, cols: m.dIn });
  }
  return byTensor;
}

/** Bytes the native weight store holds for a model at these formats (CausalLM.load): each stored matrix once. */
export function baseStoreBytes(layout: ModelLayout, formats: BaseFormats): number {
  return [...storedMatrices(layout, formats).values()].reduce((sum, m) => sum + packedBytes(m.rows, m.cols, m.format), 0);
}
