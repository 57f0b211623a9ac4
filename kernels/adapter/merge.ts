// The adapter folded away: the mixer product M_k···M_1, plain LoRA (A′ = M·A), the full
// ΔW = s·B·M·A, and merging it into (or out of) a base weight, refusing non-finite results. With
// DoRA the merge is PEFT's: W′ = m/‖W + ΔW‖ · (W + ΔW), per output feature.
import * as tf from '@tensorflow/tfjs-core';
import { adapterScaling, type ResolvedAdapterSpec } from './spec';
import type { AdapterWeights } from './init';
import { baseDims, checkAdapterShapes, type BaseLinear } from './linear';
import { takeNumber } from '../backends/read';

export class NonFiniteMergeError extends Error {
  constructor(readonly module: string) {
    super(`${module}: NaN or Inf in the merged weight; the adapter or the base weight is not finite, nothing was written`);
    this.name = 'NonFiniteMergeError';
  }
}

/** M_k···M_1 ([r, r]), or null for LoRA. */
export function mixerProduct(mixers: readonly tf.Tensor2D[]): tf.Tensor2D | null {
  if (mixers.length === 0) return null;
  return tf.tidy(() => mixers.slice(1).reduce((acc, m) => tf.matMul(m, acc), mixers[0]!));
}

/**
 * The exact plain-LoRA form of any adapter: A′ = (M_k···M_1)·A, B′ = B, same scaling.
 * Any PEFT-style tool can load the result as an ordinary LoRA adapter.
 */
export function foldToLora(weights: AdapterWeights): { A: tf.Tensor2D; B: tf.Tensor2D } {
  return tf.tidy(() => {
    const m = mixerProduct(weights.mixers);
    return { A: m ? tf.matMul(m, weights.A) : tf.clone(weights.A), B: tf.clone(weights.B) };
  });
}

/** ΔW = s·B·(M·A), [d_out, d_in]: the small factors are multiplied first. */
export function deltaWeight(spec: ResolvedAdapterSpec, weights: AdapterWeights): tf.Tensor2D {
  checkAdapterShapes(spec, weights);
  return tf.tidy(() => {
    const { A, B } = foldToLora(weights);
    return tf.mul(tf.matMul(B, A), adapterScaling(spec));
  });
}

/** A per-output-feature vector [d_out] shaped to scale a weight held in `layout`. */
function perOutput(vector: tf.Tensor1D, layout: BaseLinear['layout']): tf.Tensor {
  return layout === 'out_in' ? tf.reshape(vector, [-1, 1]) : vector;
}

/** The norm of each output feature's weights, [d_out], of a weight held in `layout`. */
function outputNorms(weight: tf.Tensor2D, layout: BaseLinear['layout']): tf.Tensor1D {
  return tf.norm(weight, 'euclidean', layout === 'out_in' ? 1 : 0) as tf.Tensor1D;
}

async function applyDelta(
  base: BaseLinear,
  spec: ResolvedAdapterSpec,
  weights: AdapterWeights,
  sign: 1 | -1,
  module: string,
  doraNorms?: tf.Tensor1D,
): Promise<tf.Tensor2D> {
  const { dIn, dOut } = baseDims(base);
  if (dIn !== spec.dIn || dOut !== spec.dOut) {
    throw new Error(`${module}: the base weight is ${dOut}×${dIn} (d_out×d_in) but the adapter was made for ${spec.dOut}×${spec.dIn}`);
  }
  if (spec.useDora && sign < 0 && !doraNorms) {
    throw new Error(
      `${module}: unmerging a DoRA adapter needs ‖W + ΔW‖ of the weight it was merged into (doraWeightNorms before the merge): ` +
        'the merged weight keeps only their directions, its norms are the magnitudes m',
    );
  }
  const merged = tf.tidy(() => {
    const delta = deltaWeight(spec, weights);
    const oriented = base.layout === 'out_in' ? delta : tf.transpose(delta);
    if (!spec.useDora) return sign > 0 ? tf.add(base.weight, oriented) : tf.sub(base.weight, oriented);
    const magnitude = perOutput(weights.magnitude!, base.layout);
    if (sign > 0) {
      const adapted = tf.add(base.weight, oriented) as tf.Tensor2D;
      return tf.mul(adapted, tf.div(magnitude, perOutput(outputNorms(adapted, base.layout), base.layout)));
    }
    return tf.sub(tf.mul(base.weight, tf.div(perOutput(doraNorms!, base.layout), magnitude)), oriented);
  });
  const finite = (await takeNumber(tf.tidy(() => tf.all(tf.isFinite(merged))))) === 1;
  if (!finite) {
    merged.dispose();
    throw new NonFiniteMergeError(module);
  }
  return merged as tf.Tensor2D;
}

/**
 * W′ = W + s·B·M·A in the base's own layout; with DoRA, W′ = m/‖W + ΔW‖ · (W + ΔW) per output
 * feature. Throws rather than return non-finite weights.
 */
export function mergeWeight(base: BaseLinear, spec: ResolvedAdapterSpec, weights: AdapterWeights, module = 'weight'): Promise<tf.Tensor2D> {
  return applyDelta(base, spec, weights, 1, module);
}

/**
 * W = W′ − s·B·M·A: undoes mergeWeight up to float32 rounding. A DoRA merge is undone only with
 * `doraNorms`, ‖W + ΔW‖ from before the merge (the merged weight does not hold them; PEFT keeps
 * them too): W = W′ · ‖W + ΔW‖/m − ΔW.
 */
export function unmergeWeight(merged: BaseLinear, spec: ResolvedAdapterSpec, weights: AdapterWeights, module = 'weight', doraNorms?: tf.Tensor1D): Promise<tf.Tensor2D> {
  return applyDelta(merged, spec, weights, -1, module, doraNorms);
}
