// The adapter's starting factors: A kaiming-uniform as PEFT draws it, B zero (or kaiming), and
// each mixer as `mixer_init` says, seeded so that every backend draws the same values. DoRA's
// magnitude starts at ‖W + ΔW‖ (PEFT's rule), which needs the base weight: kernels/adapter/linear.ts
// doraWeightNorms, called by the adapter factory (server/models/adapters.ts).
import * as tf from '@tensorflow/tfjs-core';
import { mixerCount, type ResolvedAdapterSpec } from './spec';
import { tfSeed } from './seed';

/** The adapter's factors as PEFT stores them; `mixers[0]` is applied first (M_1). */
export interface AdapterWeights {
  A: tf.Tensor2D; // [r, d_in]
  B: tf.Tensor2D; // [d_out, r]
  mixers: tf.Tensor2D[]; // each [r, r]
  /** DoRA's magnitude m [d_out] (PEFT's lora_magnitude_vector); present exactly when the spec says use_dora. */
  magnitude?: tf.Tensor1D;
}

// PEFT and the reference MoSLoRA code use kaiming_uniform_(a=√5):
// gain = √(2/(1+a²)) = √(1/3), bound = gain·√(3/fan_in) = 1/√fan_in.
function kaimingUniform(shape: [number, number], seed: number): tf.Tensor2D {
  const bound = 1 / Math.sqrt(shape[1]);
  return tf.randomUniform(shape, -bound, bound, 'float32', tfSeed(seed));
}

// A random orthogonal matrix: Q of the QR decomposition of a Gaussian matrix, with the signs
// of R's diagonal folded into Q so that the distribution is uniform (Haar).
function orthogonal(r: number, seed: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [q, rr] = tf.linalg.qr(tf.randomNormal([r, r], 0, 1, 'float32', tfSeed(seed)));
    const signs = tf.sign(tf.sum(tf.mul(rr, tf.eye(r)), 0));
    return tf.mul(q, signs) as tf.Tensor2D;
  });
}

function initMixer(spec: ResolvedAdapterSpec, seed: number): tf.Tensor2D {
  switch (spec.mixerInit) {
    case 'kaiming':
      return kaimingUniform([spec.r, spec.r], seed);
    case 'orthogonal':
      return orthogonal(spec.r, seed);
    case 'identity':
      return tf.eye(spec.r);
    case 'zeros':
      return tf.zeros([spec.r, spec.r]);
  }
}

/** A factor's seed by its PEFT name: `lora_A`, `lora_B`, `lora_AB.<i>` for mixer i. */
export type TensorSeeds = (tensor: string) => number;

/**
 * Fresh adapter factors for one module, without DoRA's magnitude (the caller, holding the base
 * weight, adds it). The same spec and seeds give the same tensors on every backend. A number
 * seeds lora_A with it, lora_B with it + 1 and mixer i with it + 2 + i: for one adapter on its own.
 * Adapters of a model take a seed per tensor (server/models/adapters.ts).
 */
export function initAdapterWeights(spec: ResolvedAdapterSpec, seeds: number | TensorSeeds): AdapterWeights {
  const seedOf: TensorSeeds = typeof seeds === 'number' ? (tensor) => seeds + (tensor === 'lora_A' ? 0 : tensor === 'lora_B' ? 1 : 2 + Number(tensor.slice('lora_AB.'.length))) : seeds;
  const A = kaimingUniform([spec.r, spec.dIn], seedOf('lora_A'));
  const B = spec.bInit === 'zeros' ? tf.zeros<tf.Rank.R2>([spec.dOut, spec.r]) : kaimingUniform([spec.dOut, spec.r], seedOf('lora_B'));
  const mixers = Array.from({ length: mixerCount(spec) }, (_, i) => initMixer(spec, seedOf(`lora_AB.${i}`)));
  return { A, B, mixers };
}

export function disposeAdapterWeights(weights: AdapterWeights): void {
  tf.dispose([weights.A, weights.B, ...weights.mixers, ...(weights.magnitude ? [weights.magnitude] : [])]);
}
