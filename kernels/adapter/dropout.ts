// Dropout masks from a counter-based hash, computed where the tensors live. tfjs draws random
// numbers in JavaScript (tf.randomUniform fills a buffer on the CPU, then uploads it), which on a
// GPU would put ~60M draws and their upload into every step of a ~100M model. Here every mask
// element is a hash of (seed, sequence, position): the webgpu backend computes it in a shader,
// the others here, with the same 32-bit integer arithmetic, so every backend makes the same
// masks bit for bit (the curves of two backends can be compared) and a sequence's mask does not
// depend on which shard of a batch it is in (data parallelism, see AdaptedLinearOptions.firstSequence).
import * as tf from '@tensorflow/tfjs-core';
import { elementwiseProgram, ownKernelAvailable, registerWebgpuProgram, runOwnKernel, type Uniform, type WebgpuUtil } from '../backends/webgpu-program';

/** The kernel's name, for the backends that compute masks themselves (webgpu). */
export const DROPOUT_MASK = 'MosloraDropoutMask';

/** The golden ratio in 32 bits: decorrelates consecutive counters before they are hashed. */
const GOLDEN = 0x9e3779b9;

/**
 * What fixes a mask of shape [rows, cols] made of `sequences` equal blocks of rows: element j
 * of block b is kept when the top 24 bits of its hash reach `threshold`, and is then `scale`.
 */
export interface DropoutMaskAttrs {
  rows: number;
  cols: number;
  sequences: number;
  /** The first block's sequence index in the whole batch. */
  firstSequence: number;
  /** 32-bit key of the seed (seedKey). */
  key: number;
  /** round(rate · 2²⁴): a 24-bit draw below it is dropped. */
  threshold: number;
  /** 1 / (1 − rate), in float32. */
  scale: number;
}

/**
 * Chris Wellons' lowbias32 (github.com/skeeto/hash-prospector): a bijection on 32-bit words with
 * low avalanche bias; the same five operations in WGSL below.
 */
function lowbias32(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x21f0aaad);
  x ^= x >>> 15;
  x = Math.imul(x, 0x735a2d97);
  x ^= x >>> 15;
  return x >>> 0;
}

/** A seed (any number: the trainer's are fractional per module) as a 32-bit key, from its float64 bits. */
export function seedKey(seed: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, seed);
  return lowbias32(lowbias32(view.getUint32(4)) ^ view.getUint32(0));
}

/** The key of one sequence's block. */
function sequenceKey(key: number, sequence: number): number {
  return lowbias32(key ^ lowbias32(sequence ^ GOLDEN));
}

export function dropoutMaskAttrs(shape: [number, number], sequences: number, rate: number, seed: number | undefined, firstSequence: number): DropoutMaskAttrs {
  if (!(rate > 0 && rate < 1)) throw new Error(`dropout: rate ${rate} is outside (0, 1)`);
  if (shape[0] % sequences !== 0) throw new Error(`dropout: ${shape[0]} rows do not split into ${sequences} sequences`);
  return {
    rows: shape[0],
    cols: shape[1],
    sequences,
    firstSequence,
    key: seed === undefined ? Math.floor(Math.random() * 2 ** 32) : seedKey(seed),
    threshold: Math.round(rate * 2 ** 24),
    scale: Math.fround(1 / (1 - rate)),
  };
}

/** The mask's values, computed here: what every backend's kernel must give, bit for bit. */
export function dropoutMaskValues(attrs: DropoutMaskAttrs): Float32Array {
  const { rows, cols, sequences, firstSequence, key, threshold, scale } = attrs;
  const perSequence = (rows / sequences) * cols;
  const out = new Float32Array(rows * cols);
  for (let s = 0; s < sequences; s++) {
    const k = sequenceKey(key, firstSequence + s);
    const base = s * perSequence;
    for (let j = 0; j < perSequence; j++) {
      if (lowbias32(k + Math.imul(j, GOLDEN)) >>> 8 >= threshold) out[base + j] = scale;
    }
  }
  return out;
}

/**
 * Inverted dropout's mask, keep with probability 1 − rate and scale by 1 / (1 − rate), for
 * [rows, cols] made of `sequences` equal blocks of rows, from (seed, sequence index, position).
 * Without a seed, a random one.
 */
export function dropoutMask(shape: [number, number], sequences: number, rate: number, seed: number | undefined, firstSequence: number): tf.Tensor2D {
  return dropoutMaskTensor(dropoutMaskAttrs(shape, sequences, rate, seed, firstSequence));
}

/** The mask these attributes fix, as a tensor: from the backend's own kernel where it has one, else computed here and uploaded. */
export function dropoutMaskTensor(attrs: DropoutMaskAttrs): tf.Tensor2D {
  if (ownKernelAvailable(DROPOUT_MASK)) return runOwnKernel(DROPOUT_MASK, {}, attrs);
  return tf.tensor2d(dropoutMaskValues(attrs), [attrs.rows, attrs.cols]);
}

/** The uniforms MASK_WGSL reads, declared in a program's uniform struct. */
export const MASK_UNIFORMS = 'maskKey : u32, maskFirstSequence : u32, maskPerSequence : u32, maskThreshold : u32, maskScale : f32,';

/** MASK_UNIFORMS' values for a mask (all zero without one: MASK_WGSL is then not called). */
export function maskUniformData(a: DropoutMaskAttrs | null): Uniform[] {
  return [
    { type: 'uint32', data: [a ? a.key : 0] },
    { type: 'uint32', data: [a ? a.firstSequence : 0] },
    { type: 'uint32', data: [a ? (a.rows / a.sequences) * a.cols : 1] },
    { type: 'uint32', data: [a ? a.threshold : 0] },
    { type: 'float32', data: [a ? a.scale : 1] },
  ];
}

/**
 * WGSL: `dropoutMaskAt(i)`, the mask's value at flat index i, from MASK_UNIFORMS: the same hash
 * as dropoutMaskValues in u32 arithmetic (which wraps, as Math.imul does).
 */
export const MASK_WGSL = `
  fn lowbias32(v : u32) -> u32 {
    var x = v;
    x = x ^ (x >> 16u);
    x = x * 0x21f0aaadu;
    x = x ^ (x >> 15u);
    x = x * 0x735a2d97u;
    x = x ^ (x >> 15u);
    return x;
  }
  fn dropoutMaskAt(i : u32) -> f32 {
    let sequence = uniforms.maskFirstSequence + i / uniforms.maskPerSequence;
    let key = lowbias32(uniforms.maskKey ^ lowbias32(sequence ^ ${GOLDEN}u));
    let bits = lowbias32(key + (i % uniforms.maskPerSequence) * ${GOLDEN}u);
    return select(0.0, uniforms.maskScale, (bits >> 8u) >= uniforms.maskThreshold);
  }`;

/** Registers the mask kernel on the webgpu backend (with its package's webgpu_util): an invocation per element. */
export function registerWebgpuDropoutMask(util: WebgpuUtil): void {
  registerWebgpuProgram<DropoutMaskAttrs>(DROPOUT_MASK, (_, a) => ({
    program: elementwiseProgram(util, {
      key: 'moslora_dropout_mask',
      variableNames: [],
      shape: [a.rows, a.cols],
      uniforms: MASK_UNIFORMS,
      declarations: MASK_WGSL,
      body: 'setOutputAtIndex(index, dropoutMaskAt(u32(index)));',
    }),
    inputs: [],
    uniforms: maskUniformData(a),
  }));
}
