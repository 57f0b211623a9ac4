// Where the method lives: the adapted linear layer y = x·Wᵀ + b + s·dropout(x)·Aᵀ·(M_k···M_1)ᵀ·Bᵀ,
// forward and custom gradient, for LoRA (no mixer), MoSLoRA (a learned r×r mixer M), a fixed
// mixer and a chain of mixers, each also with DoRA's magnitude; the frozen base W gets no
// gradient. Merge, fold and init are beside it in this folder; kernels/adapter/spec.ts says what
// a spec may hold.
import * as tf from '@tensorflow/tfjs-core';
import {
  AdapterConfigError,
  adapterScaling,
  mixerCount,
  mixersTrainable,
  type ResolvedAdapterSpec,
} from './spec';
import type { AdapterWeights } from './init';
import { dropoutMaskAttrs, dropoutMaskTensor, type DropoutMaskAttrs } from './dropout';
import { expand, fusedAdapterAvailable, outer, project } from './fused-adapter';
import { matMul, matMulByConstant } from '../ops/matmul';
import { nativeInputGradient, nativeLinear } from '../base/native-weights';
import type { PackedMatrix } from '../base/quant';
import { quantInputGradient, quantLinear, quantRowNormsSquared, type GpuPackedMatrix } from '../base/webgpu-quant';

/**
 * A frozen linear layer held as a tensor. `layout` says how the checkpoint stores W: 'out_in' is
 * nn.Linear's [d_out, d_in]; 'in_out' is GPT-2's Conv1D [d_in, d_out]. The weight is used as
 * stored, never transposed into a copy.
 */
export interface TensorBaseLinear {
  weight: tf.Tensor2D;
  bias?: tf.Tensor1D;
  layout: 'out_in' | 'in_out';
  /**
   * ‖W_i‖² of each output feature i ([d_out]), kept by a model whose DoRA adapters read it at
   * every call; where absent, DoRA computes it from the weight each time (weightNormsSquared).
   */
  weightNormsSquared?: tf.Tensor1D;
}

/**
 * A frozen linear layer whose W [d_out, d_in] lives in the native weight store at its stored
 * precision (kernels/base/native-weights.ts), outside the tensors: its products run there, on
 * the wasm and cpu backends.
 */
export interface PackedBaseLinear {
  packed: PackedMatrix;
  bias?: tf.Tensor1D;
  weightNormsSquared?: tf.Tensor1D;
}

/**
 * A frozen linear layer whose W [d_out, d_in] lives on the GPU at its stored precision
 * (kernels/base/webgpu-quant.ts), its products dequantising inside the kernels, on webgpu.
 */
export interface GpuBaseLinear {
  gpu: GpuPackedMatrix;
  bias?: tf.Tensor1D;
  weightNormsSquared?: tf.Tensor1D;
}

export type BaseLinear = TensorBaseLinear | PackedBaseLinear | GpuBaseLinear;

export function isPackedBase(base: BaseLinear): base is PackedBaseLinear {
  return 'packed' in base;
}

export function isGpuBase(base: BaseLinear): base is GpuBaseLinear {
  return 'gpu' in base;
}

export interface Adapter {
  spec: ResolvedAdapterSpec;
  weights: AdapterWeights;
  /**
   * DoRA's ‖W + ΔW‖ ([d_out]) for an adapter whose weights do not change while it is used
   * (generation), read by each call instead of computed; absent, each call computes it.
   */
  fixedNorms?: tf.Tensor1D;
}

export interface AdaptedLinearOptions {
  /** Dropout is applied only while training. */
  training?: boolean;
  /** Seed of this call's dropout mask: the same seed gives the same mask. */
  dropoutSeed?: number;
  /**
   * Where x's sequences (its leading axis, for x of rank 3 or more) start in the whole batch.
   * Seeded masks are drawn a sequence at a time from (seed, sequence index), so a batch split
   * across workers, each passing its first sequence's index, gets the masks the whole batch would.
   */
  firstSequence?: number;
  /**
   * Runs the adapter as tfjs ops even where its fused kernels are registered (webgpu): the tests
   * and the kernels benchmark compare the two.
   */
  composite?: boolean;
}

export function baseDims(base: BaseLinear): { dIn: number; dOut: number } {
  if (isPackedBase(base)) return { dIn: base.packed.cols, dOut: base.packed.rows };
  if (isGpuBase(base)) return { dIn: base.gpu.cols, dOut: base.gpu.rows };
  const [rows, cols] = base.weight.shape;
  return base.layout === 'out_in' ? { dIn: cols, dOut: rows } : { dIn: rows, dOut: cols };
}

function expectShape(argument: string, actual: readonly number[], expected: readonly number[]): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    throw new AdapterConfigError(argument, `shape [${actual.join(', ')}] does not match the expected [${expected.join(', ')}]`);
  }
}

/** Throws if the factors do not have the shapes the spec promises. */
export function checkAdapterShapes(spec: ResolvedAdapterSpec, weights: AdapterWeights): void {
  expectShape('A', weights.A.shape, [spec.r, spec.dIn]);
  expectShape('B', weights.B.shape, [spec.dOut, spec.r]);
  if (weights.mixers.length !== mixerCount(spec)) {
    throw new AdapterConfigError(
      'mixers',
      `method '${spec.method}' stores ${mixerCount(spec)} mixer(s), got ${weights.mixers.length}`,
    );
  }
  weights.mixers.forEach((m, i) => expectShape(`mixers[${i}]`, m.shape, [spec.r, spec.r]));
  if (spec.useDora && !weights.magnitude) {
    throw new AdapterConfigError('magnitude', 'a DoRA adapter (use_dora) needs its magnitude vector m [d_out]; none was given');
  }
  if (!spec.useDora && weights.magnitude) {
    throw new AdapterConfigError('magnitude', 'a magnitude vector belongs to a DoRA adapter, but this spec does not set use_dora');
  }
  if (weights.magnitude) expectShape('magnitude', weights.magnitude.shape, [spec.dOut]);
}

function checkBase(base: BaseLinear, adapter: Adapter | null): void {
  const { dIn, dOut } = baseDims(base);
  if (base.bias) expectShape('bias', base.bias.shape, [dOut]);
  if (!adapter) return;
  if (adapter.spec.dIn !== dIn || adapter.spec.dOut !== dOut) {
    throw new AdapterConfigError(
      'base',
      `weight${'layout' in base ? ` (layout ${base.layout})` : ''} is ${dOut}×${dIn} (d_out×d_in) but the adapter was made for ${adapter.spec.dOut}×${adapter.spec.dIn}`,
    );
  }
  checkAdapterShapes(adapter.spec, adapter.weights);
}

/** x·Wᵀ, without the bias. */
function baseProduct(x: tf.Tensor2D, base: BaseLinear): tf.Tensor2D {
  if (isPackedBase(base)) return nativeLinear(x, base.packed);
  if (isGpuBase(base)) return quantLinear(x, base.gpu);
  return matMulByConstant<tf.Tensor2D>(x, base.weight, false, base.layout === 'out_in');
}

function baseForward(x: tf.Tensor2D, base: BaseLinear): tf.Tensor2D {
  const y = baseProduct(x, base);
  return base.bias ? tf.add<tf.Tensor2D>(y, base.bias) : y;
}

/** The base layer's share of the input's gradient, g·W. */
function baseInputGradient(g: tf.Tensor2D, base: BaseLinear): tf.Tensor2D {
  if (isPackedBase(base)) return nativeInputGradient(g, base.packed);
  if (isGpuBase(base)) return quantInputGradient(g, base.gpu);
  return matMul(g, base.weight, false, base.layout === 'in_out');
}

/** v_0 and v_i = v_{i-1}·M_iᵀ: the adapter's rank-r activations, one per mixer after v_0. */
function mixForward(v0: tf.Tensor2D, mixers: tf.Tensor2D[]): tf.Tensor2D[] {
  const v = [v0];
  for (const m of mixers) v.push(matMul(v[v.length - 1]!, m, false, true));
  return v;
}

/** From the gradient at v_k back to v_0's, and the mixers' gradients on the way. */
function mixBackward(gvk: tf.Tensor2D, v: tf.Tensor2D[], mixers: tf.Tensor2D[]): { gv0: tf.Tensor2D; gMixers: tf.Tensor2D[] } {
  let gv = gvk;
  const gMixers: tf.Tensor2D[] = [];
  for (let i = mixers.length - 1; i >= 0; i--) {
    gMixers.unshift(matMul(gv, v[i]!, true, false)); // [r, r]
    gv = tf.matMul(gv, mixers[i]!); // gradient at v_{i-1}
  }
  return { gv0: gv, gMixers };
}

/**
 * y = x·Wᵀ + b + s · dropout(x) · Aᵀ · (M_k···M_1)ᵀ · Bᵀ, for x of shape [..., d_in].
 *
 * Gradients flow to x, A, B and the learned mixers through a custom gradient that only forms
 * n×r and r×d products: no d_out×d_in matrix is materialised. W, b and a frozen mixer get none.
 */
export function adaptedLinear<R extends tf.Rank>(
  x: tf.Tensor<R>,
  base: BaseLinear,
  adapter: Adapter | null,
  options: AdaptedLinearOptions = {},
): tf.Tensor<R> {
  checkBase(base, adapter);
  const { dIn, dOut } = baseDims(base);
  const inner = x.shape[x.rank - 1];
  if (x.rank < 1 || inner !== dIn) {
    throw new AdapterConfigError('x', `last dimension ${inner} does not match the layer's d_in = ${dIn}`);
  }
  const outShape = [...x.shape.slice(0, -1), dOut];
  return tf.tidy(() => {
    const x2 = tf.reshape(x, [-1, dIn]) as tf.Tensor2D;
    const sequences = x.rank >= 3 ? x.shape[0] : 1;
    const y = adapter ? adapterForward(x2, sequences, base, adapter, options) : baseForward(x2, base);
    return tf.reshape(y, outShape as tf.ShapeMap[R]) as tf.Tensor<R>;
  });
}

/** The layer's tensors as a custom gradient sees them: the mixers are the frozen ones for a fixed mixer. */
interface AdapterArgs {
  x: tf.Tensor2D;
  A: tf.Tensor2D;
  mixers: tf.Tensor2D[];
  B: tf.Tensor2D;
  save: tf.GradSaveFunc;
}

/** What a custom gradient's function returns: the value, and how to get the inputs' gradients. */
interface ValueAndGradient {
  value: tf.Tensor2D;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
}

/**
 * y from `body`, with gradients for x, A, the learned mixers and B only (in that order, as the
 * body's gradFunc returns them).
 */
function withAdapterGradient(x: tf.Tensor2D, adapter: Adapter, body: (args: AdapterArgs) => ValueAndGradient): tf.Tensor2D {
  const learned = mixersTrainable(adapter.spec);
  const { weights } = adapter;
  const fn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xIn, A, ...rest] = args as tf.Tensor2D[];
    const B = rest.pop() as tf.Tensor2D;
    return body({ x: xIn!, A: A!, mixers: learned ? rest : weights.mixers, B, save });
  });
  return fn(x, weights.A, ...(learned ? weights.mixers : []), weights.B) as tf.Tensor2D;
}

/** The gradients the custom gradient returns: the mixers' only where they are learned. */
function adapterGradients(adapter: Adapter, gx: tf.Tensor, gA: tf.Tensor, gMixers: tf.Tensor[], gB: tf.Tensor): tf.Tensor[] {
  return [gx, gA, ...(mixersTrainable(adapter.spec) ? gMixers : []), gB];
}

/**
 * The adapter's share of the layer, with its dropout mask while training (fixed here, once, from
 * the seed and the sequences): on the fused kernels where the backend has them, else as tfjs ops.
 */
function adapterForward(x: tf.Tensor2D, sequences: number, base: BaseLinear, adapter: Adapter, options: AdaptedLinearOptions): tf.Tensor2D {
  const { spec } = adapter;
  const s = adapterScaling(spec);
  const rate = options.training ? spec.dropout : 0;
  const mask = rate > 0 ? dropoutMaskAttrs([x.shape[0], spec.dIn], sequences, rate, options.dropoutSeed, options.firstSequence ?? 0) : null;
  if (spec.useDora) return doraAdapterForward(x, base, adapter, s, mask && dropoutMaskTensor(mask));
  if (!options.composite && fusedAdapterAvailable(spec.r)) return fusedAdapterForward(x, base, adapter, s, mask);
  return compositeAdapterForward(x, base, adapter, s, mask && dropoutMaskTensor(mask));
}

/** The adapter as tfjs ops, the mask a tensor kept with the masked input for the backward pass. */
function compositeAdapterForward(x: tf.Tensor2D, base: BaseLinear, adapter: Adapter, s: number, mask: tf.Tensor2D | null): tf.Tensor2D {
  return withAdapterGradient(x, adapter, ({ x: xIn, A, mixers, B, save }) => {
    const xd: tf.Tensor2D = mask ? tf.mul(xIn, mask) : xIn;
    // v_0 = xd·Aᵀ [n, r]; v_i = v_{i-1}·M_iᵀ; z = v_k·Bᵀ [n, d_out]
    const v = mixForward(matMul(xd, A, false, true), mixers);
    const z = matMul(v[v.length - 1]!, B, false, true);
    const value = tf.add<tf.Tensor2D>(baseForward(xIn, base), tf.mul(z, s));
    save([xd, A, B, ...mixers, ...v, ...(mask ? [mask] : [])]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sxd, sA, sB, ...tail] = saved as tf.Tensor2D[];
        const sm = tail.slice(0, mixers.length);
        const sv = tail.slice(mixers.length, 2 * mixers.length + 1);
        const sMask = mask ? tail[tail.length - 1]! : null;
        const g = dy as tf.Tensor2D;
        const gz = tf.mul(g, s); // [n, d_out]
        const gB = matMul(gz, sv[sv.length - 1]!, true, false); // [d_out, r]
        const { gv0, gMixers } = mixBackward(tf.matMul(gz, sB!), sv, sm);
        const gA = matMul(gv0, sxd!, true, false); // [r, d_in]
        const gxAdapter = tf.matMul(gv0, sA!); // [n, d_in]
        const gx = tf.add(baseInputGradient(g, base), sMask ? tf.mul(gxAdapter, sMask) : gxAdapter);
        return adapterGradients(adapter, gx, gA, gMixers, gB);
      },
    };
  });
}

/**
 * The adapter on the fused kernels (kernels/adapter/fused-adapter.ts): the same function and
 * gradients, with the mask computed inside the kernels that use it, so neither the mask nor the
 * masked input is kept for the backward pass.
 */
function fusedAdapterForward(x: tf.Tensor2D, base: BaseLinear, adapter: Adapter, s: number, mask: DropoutMaskAttrs | null): tf.Tensor2D {
  return withAdapterGradient(x, adapter, ({ x: xIn, A, mixers, B, save }) => {
    const v = mixForward(project(xIn, A, { wLayout: 'rank_cols', scale: 1, mask }), mixers);
    const value = expand(baseForward(xIn, base), v[v.length - 1]!, B, { wLayout: 'cols_rank', scale: s, mask: null });
    save([xIn, A, B, ...mixers, ...v]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sA, sB, ...tail] = saved as tf.Tensor2D[];
        const sm = tail.slice(0, mixers.length);
        const sv = tail.slice(mixers.length);
        const g = dy as tf.Tensor2D;
        const gB = outer(g, sv[sv.length - 1]!, { wLayout: 'cols_rank', scale: s, mask: null });
        const { gv0, gMixers } = mixBackward(project(g, sB!, { wLayout: 'cols_rank', scale: s, mask: null }), sv, sm);
        const gA = outer(sx!, gv0, { wLayout: 'rank_cols', scale: 1, mask });
        const gx = expand(baseInputGradient(g, base), gv0, sA!, { wLayout: 'rank_cols', scale: 1, mask });
        return adapterGradients(adapter, gx, gA, gMixers, gB);
      },
    };
  });
}

/** ‖W_i‖² of each output feature i, [d_out]: the base weight's, or the one its model keeps. */
export function weightNormsSquared(base: BaseLinear): tf.Tensor1D {
  if (base.weightNormsSquared) return base.weightNormsSquared;
  if (isPackedBase(base)) return tf.tensor1d(base.packed.rowNormsSquared());
  if (isGpuBase(base)) return quantRowNormsSquared(base.gpu);
  return tf.sum(tf.square(base.weight), base.layout === 'out_in' ? 1 : 0);
}

/**
 * DoRA's ‖W_i + ΔW_i‖ for each output feature i ([d_out], ΔW = s·B·A′, A′ = M_k···M_1·A), without
 * forming a d_out×d_in matrix:
 *
 *   ‖W_i + ΔW_i‖² = ‖W_i‖² + 2s·B_i·(A′·W_iᵀ) + s²·B_i·(A′·A′ᵀ)·B_iᵀ
 *
 * One product A′·Wᵀ (the base's own product on r rows, d_out·d_in·r) and an r×r Gram matrix;
 * ‖W_i‖² from the model when it keeps it. Also the magnitude a fresh DoRA adapter starts from
 * (PEFT's rule: the norms of the weight with the adapter's initial update).
 */
export function doraWeightNorms(base: BaseLinear, spec: ResolvedAdapterSpec, weights: Pick<AdapterWeights, 'A' | 'B' | 'mixers'>): tf.Tensor1D {
  return tf.tidy(() => {
    const s = adapterScaling(spec);
    const folded = weights.mixers.reduce((a, m) => tf.matMul(m, a), weights.A); // A′ [r, d_in]
    const projected = tf.transpose(baseProduct(folded, base)); // W·A′ᵀ [d_out, r]
    const cross = tf.sum(tf.mul(projected, weights.B), 1); // B_i·(A′·W_iᵀ)
    const gram = matMul(folded, folded, false, true); // A′·A′ᵀ [r, r]
    const quadratic = tf.sum(tf.mul(tf.matMul(weights.B, gram), weights.B), 1); // B_i·(A′A′ᵀ)·B_iᵀ
    const squared = tf.add(weightNormsSquared(base), tf.add(tf.mul(cross, 2 * s), tf.mul(quadratic, s * s)));
    // rounding can take an exactly cancelled row a hair below zero
    return tf.sqrt(tf.relu(squared)) as tf.Tensor1D;
  });
}

/**
 * DoRA, as PEFT computes it: with f = m / ‖W + ΔW‖ (a constant in the backward pass) and
 * z(x) = s·x·A′ᵀ·Bᵀ,
 *
 *   without dropout:  y = f ⊙ (x·Wᵀ + z(x)) + b
 *   with dropout:     y = x·Wᵀ + b + (f − 1) ⊙ (x_d·Wᵀ) + f ⊙ z(x_d),   x_d = dropout(x)
 *
 * the second computing the base's product twice, on x and on x_d, as PEFT does (lora_dropout 0
 * avoids it); the bias is not scaled. As tfjs ops on every backend. Gradients flow to x, A, the
 * learned mixers, B and m; the frozen W, b and a frozen mixer get none.
 */
function doraAdapterForward(x: tf.Tensor2D, base: BaseLinear, adapter: Adapter, s: number, mask: tf.Tensor2D | null): tf.Tensor2D {
  const { spec, weights } = adapter;
  const learned = mixersTrainable(spec);
  const fn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xIn, A, ...rest] = args as tf.Tensor[];
    const magnitude = rest.pop() as tf.Tensor1D;
    const B = rest.pop() as tf.Tensor2D;
    const mixers = learned ? (rest as tf.Tensor2D[]) : weights.mixers;
    const norms = adapter.fixedNorms ?? doraWeightNorms(base, spec, { A: A as tf.Tensor2D, B, mixers });
    const scale = tf.div<tf.Tensor1D>(magnitude, norms); // f [d_out]
    const xd: tf.Tensor2D = mask ? tf.mul(xIn as tf.Tensor2D, mask) : (xIn as tf.Tensor2D);
    const v = mixForward(matMul(xd, A as tf.Tensor2D, false, true), mixers);
    const z = tf.mul<tf.Tensor2D>(matMul(v[v.length - 1]!, B, false, true), s); // [n, d_out]
    const product = baseProduct(xd, base); // x_d·Wᵀ
    const direction = tf.add<tf.Tensor2D>(product, z); // x_d·(W + ΔW)ᵀ
    const scaled = tf.mul<tf.Tensor2D>(direction, scale);
    // with dropout: x·Wᵀ + b + (f − 1)·x_d·Wᵀ + f·z(x_d) = x·Wᵀ + b − x_d·Wᵀ + f·(x_d·Wᵀ + z(x_d))
    const value = mask ? tf.add<tf.Tensor2D>(tf.sub(baseForward(xIn as tf.Tensor2D, base), product), scaled) : base.bias ? tf.add<tf.Tensor2D>(scaled, base.bias) : scaled;
    save([xd, A as tf.Tensor2D, B, scale, norms, direction, ...mixers, ...v, ...(mask ? [mask] : [])]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sxd, sA, sB, sScale, sNorms, sDirection, ...tail] = saved as tf.Tensor2D[];
        const sm = tail.slice(0, mixers.length);
        const sv = tail.slice(mixers.length, 2 * mixers.length + 1);
        const sMask = mask ? tail[tail.length - 1]! : null;
        const g = dy as tf.Tensor2D;
        const gMagnitude = tf.div(tf.sum(tf.mul(g, sDirection!), 0), sNorms!); // [d_out]
        const gScaled = tf.mul<tf.Tensor2D>(g, sScale!); // the gradient at x_d·(W + ΔW)ᵀ
        const gz = tf.mul(gScaled, s);
        const gB = matMul(gz, sv[sv.length - 1]!, true, false); // [d_out, r]
        const { gv0, gMixers } = mixBackward(tf.matMul(gz, sB!), sv, sm);
        const gA = matMul(gv0, sxd!, true, false); // [r, d_in]
        const gxAdapter = tf.matMul(gv0, sA!); // [n, d_in]
        // without dropout, x·Wᵀ is scaled by f; with it, x·Wᵀ plus (f − 1)·x_d·Wᵀ
        const gx = sMask
          ? tf.add(baseInputGradient(g, base), tf.mul(tf.add(baseInputGradient(tf.sub(gScaled, g), base), gxAdapter), sMask))
          : tf.add(baseInputGradient(gScaled, base), gxAdapter);
        return [gx, gA, ...(learned ? gMixers : []), gB, gMagnitude];
      },
    };
  });
  return fn(x, weights.A, ...(learned ? weights.mixers : []), weights.B, weights.magnitude!) as tf.Tensor2D;
}
