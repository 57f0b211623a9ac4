// Where a frozen base's weights go on a WebGPU device: every weight's buffers at its stored
// precision (kernels/base/quant.ts), planned from the model's shapes alone, before anything loads.
//
// A WGSL kernel binds a buffer whole, and WebGPU caps a binding at the device's
// `maxStorageBufferBindingSize` and a buffer at `maxBufferSize` (Dawn's defaults: 128 MiB and
// 256 MiB). A Llama-3.1-8B embedding or lm_head [128256, 4096] is 2 GiB at float32 and 251 MiB
// at 4 bits: past one binding. So a matrix is split into chunks of whole rows (rows are outputs
// of the product x·Wᵀ, and a grouped precision's groups run along a row, so a chunk dequantises
// alone), as few as fit, of nearly equal size; each chunk is two buffers, its codes and (for the
// grouped precisions) its scales. Buffers hold whole 32-bit words (WGSL reads u32), so a chunk's
// codes are padded to a multiple of 4 bytes. Kernels index bytes with i32, so no buffer passes
// 2^31 bytes whatever the device allows.
import { checkBaseFormat, isGrouped, type BaseFormat } from './quant';

/** The device limits a plan keeps within (a GPUSupportedLimits has both). */
export interface BufferLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/** A decoder-only transformer's shapes, as a Llama config.json gives them. */
export interface ModelShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocabulary: number;
  /** lm_head is the embedding table (tie_word_embeddings). */
  tied: boolean;
  /** Width of a head: hidden / heads unless given (head_dim). */
  headDim?: number;
}

/** Rows [row0, row0 + rows) of a matrix in one pair of buffers. */
export interface RowChunk {
  row0: number;
  rows: number;
  /** Bytes of the codes buffer (whole words). */
  codeBytes: number;
  /** Bytes of the scales buffer; 0 for the precisions without scales. */
  scaleBytes: number;
}

export interface PlannedWeight {
  /** The checkpoint's tensor name (Hugging Face's Llama names). */
  name: string;
  rows: number;
  cols: number;
  /** float32 for the norms' vectors, which stay float32 at every precision (as in QLoRA); the plan's format for the matrices. */
  format: BaseFormat;
  chunks: RowChunk[];
  bytes: number;
}

export interface BasePlan {
  format: BaseFormat;
  limits: BufferLimits;
  weights: PlannedWeight[];
  /** GPU buffers in all. */
  buffers: number;
  /** Bytes of every buffer together. */
  totalBytes: number;
  /** The largest buffer, at most the largest a binding or buffer may be. */
  largestBuffer: number;
}

/** Bytes a kernel may index with i32. */
const INDEX_BYTES = 2 ** 31 - 4;

/** The largest buffer a kernel binds: the smaller limit, whole words, within i32 byte indices. */
export function bindableBytes(limits: BufferLimits): number {
  for (const key of ['maxStorageBufferBindingSize', 'maxBufferSize'] as const) {
    if (!(Number.isSafeInteger(limits[key]) && limits[key] >= 4)) throw new RangeError(`device limit ${key} must be an integer of at least 4 bytes, got ${limits[key]}`);
  }
  return Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, INDEX_BYTES) & ~3;
}

/** Bytes of codes a row of [rows, cols] takes at `format` (int4 and nf4: padded to whole groups, as PackedMatrix stores them). */
export function rowCodeBytes(cols: number, format: BaseFormat): number {
  const groups = Math.ceil(cols / format.groupSize);
  switch (format.precision) {
    case 'float32':
      return 4 * cols;
    case 'bfloat16':
    case 'float16':
      return 2 * cols;
    case 'int8':
      return cols;
    case 'int4':
    case 'nf4':
      return groups * (format.groupSize / 2);
  }
}

const words = (bytes: number) => Math.ceil(bytes / 4) * 4;

/**
 * The chunks of whole rows a [rows, cols] matrix at `format` takes: as few as keep every buffer
 * within `limits`, of nearly equal size. `name` says which matrix in the error when one row
 * alone does not fit.
 */
export function chunkRows(rows: number, cols: number, format: BaseFormat, limits: BufferLimits, name = 'a matrix'): RowChunk[] {
  checkBaseFormat(format);
  if (!(Number.isSafeInteger(rows) && rows > 0 && Number.isSafeInteger(cols) && cols > 0)) {
    throw new RangeError(`${name}: rows and columns must be positive integers, got [${rows}, ${cols}]`);
  }
  const limit = bindableBytes(limits);
  const rowBytes = rowCodeBytes(cols, format);
  const rowScaleBytes = isGrouped(format.precision) ? 4 * Math.ceil(cols / format.groupSize) : 0;
  const perRow = Math.max(rowBytes, rowScaleBytes);
  if (perRow > limit) {
    throw new RangeError(`${name}: one row [${cols}] at ${format.precision} takes ${perRow} bytes, more than the device binds in one buffer (${limit})`);
  }
  // padding to a word adds at most 3 bytes, which a limit of whole words absorbs
  const count = Math.ceil(rows / Math.floor(limit / perRow));
  const base = Math.floor(rows / count);
  const chunks: RowChunk[] = [];
  for (let c = 0, row0 = 0; c < count; c++) {
    const n = base + (c < rows % count ? 1 : 0);
    chunks.push({ row0, rows: n, codeBytes: words(n * rowBytes), scaleBytes: n * rowScaleBytes });
    row0 += n;
  }
  return chunks;
}

/** The model's frozen weights, [rows, cols] each: nn.Linear's [d_out, d_in] for the matrices. */
export function frozenWeights(shape: ModelShape): { name: string; rows: number; cols: number; matrix: boolean }[] {
  for (const key of ['hidden', 'layers', 'heads', 'kvHeads', 'intermediate', 'vocabulary'] as const) {
    if (!(Number.isSafeInteger(shape[key]) && shape[key] > 0)) throw new RangeError(`model shape: ${key} must be a positive integer, got ${shape[key]}`);
  }
  const { hidden, layers, heads, kvHeads, intermediate, vocabulary } = shape;
  if (heads % kvHeads !== 0) throw new RangeError(`model shape: heads (${heads}) must be a multiple of kvHeads (${kvHeads})`);
  const headDim = shape.headDim ?? hidden / heads;
  if (!(Number.isSafeInteger(headDim) && headDim > 0)) throw new RangeError(`model shape: hidden (${hidden}) is not a multiple of heads (${heads}); give headDim`);
  const weights = [{ name: 'model.embed_tokens.weight', rows: vocabulary, cols: hidden, matrix: true }];
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}`;
    weights.push(
      { name: `${p}.input_layernorm.weight`, rows: 1, cols: hidden, matrix: false },
      { name: `${p}.self_attn.q_proj.weight`, rows: heads * headDim, cols: hidden, matrix: true },
      { name: `${p}.self_attn.k_proj.weight`, rows: kvHeads * headDim, cols: hidden, matrix: true },
      { name: `${p}.self_attn.v_proj.weight`, rows: kvHeads * headDim, cols: hidden, matrix: true },
      { name: `${p}.self_attn.o_proj.weight`, rows: hidden, cols: heads * headDim, matrix: true },
      { name: `${p}.post_attention_layernorm.weight`, rows: 1, cols: hidden, matrix: false },
      { name: `${p}.mlp.gate_proj.weight`, rows: intermediate, cols: hidden, matrix: true },
      { name: `${p}.mlp.up_proj.weight`, rows: intermediate, cols: hidden, matrix: true },
      { name: `${p}.mlp.down_proj.weight`, rows: hidden, cols: intermediate, matrix: true },
    );
  }
  weights.push({ name: 'model.norm.weight', rows: 1, cols: hidden, matrix: false });
  if (!shape.tied) weights.push({ name: 'lm_head.weight', rows: vocabulary, cols: hidden, matrix: true });
  return weights;
}

const FLOAT32: BaseFormat = { precision: 'float32', groupSize: 1 };

/**
 * Every frozen weight's GPU buffers for a model of `shape` with its matrices at `format`, within
 * `limits`: the embedding and lm_head (and any matrix) split into row chunks where one buffer
 * cannot hold them, a tied lm_head planned once (as the embedding).
 */
export function planBaseBuffers(shape: ModelShape, format: BaseFormat, limits: BufferLimits): BasePlan {
  checkBaseFormat(format);
  const weights = frozenWeights(shape).map(({ name, rows, cols, matrix }): PlannedWeight => {
    const at = matrix ? format : FLOAT32;
    const chunks = chunkRows(rows, cols, at, limits, name);
    return { name, rows, cols, format: at, chunks, bytes: chunks.reduce((sum, c) => sum + c.codeBytes + c.scaleBytes, 0) };
  });
  const sizes = weights.flatMap((w) => w.chunks.flatMap((c) => (c.scaleBytes > 0 ? [c.codeBytes, c.scaleBytes] : [c.codeBytes])));
  return {
    format,
    limits: { maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, maxBufferSize: limits.maxBufferSize },
    weights,
    buffers: sizes.length,
    totalBytes: sizes.reduce((sum, b) => sum + b, 0),
    largestBuffer: Math.max(...sizes),
  };
}
