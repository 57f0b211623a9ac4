// The adapter contract shared by every method: what a spec may say, how it is validated, and
// the numbers derived from it (scaling, mixer count, trainable parameters).
//
//   y = x·Wᵀ + b + s · dropout(x) · Aᵀ · (M_k···M_1)ᵀ · Bᵀ
//   A: [r, d_in]   M_i: [r, r]   B: [d_out, r]   (PEFT's storage shapes)
//
// lora          no mixer (M = I, never stored)
// moslora       one learned mixer (Wu et al., EMNLP 2024)
// moslora-fixed one frozen, non-identity mixer (the paper's intermediate step)
// linchain      k learned mixers, B·M_k···M_1·A
//
// use_dora, with any method: DoRA (Liu et al., ICML 2024) as PEFT implements it, a trained
// magnitude m [d_out] times the direction of the adapted weight, W′ = m · (W + ΔW) / ‖W + ΔW‖,
// the norm taken per output feature over the inputs and treated as a constant in the backward pass.
import { ADAPTER_METHODS, type AdapterMethod } from '../../protocol/methods';

export const MIXER_INITS = ['kaiming', 'orthogonal', 'identity', 'zeros'] as const;
export type MixerInit = (typeof MIXER_INITS)[number];

export const B_INITS = ['zeros', 'kaiming'] as const;
export type BInit = (typeof B_INITS)[number];

export interface AdapterSpec {
  method: AdapterMethod;
  dIn: number;
  dOut: number;
  r: number;
  alpha: number;
  /** s = α/√r instead of α/r (rsLoRA). */
  useRslora?: boolean;
  /** Mixers in a linchain (≥ 2); ignored by the other methods. */
  chainLength?: number;
  mixerInit?: MixerInit;
  /** 'zeros' (default) starts training at the base model; 'kaiming' does not. */
  bInit?: BInit;
  /** Dropout on the adapter's input only, as PEFT does. */
  dropout?: number;
  /** DoRA: a learned magnitude per output feature (PEFT's use_dora). */
  useDora?: boolean;
}

export type ResolvedAdapterSpec = Required<AdapterSpec>;

export class AdapterConfigError extends Error {
  constructor(
    readonly argument: string,
    message: string,
  ) {
    super(`${argument}: ${message}`);
    this.name = 'AdapterConfigError';
  }
}

const DEFAULT_CHAIN_LENGTH = 2;

function requirePositiveInteger(argument: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new AdapterConfigError(argument, `must be a positive integer, got ${value}`);
  }
}

function requireOneOf<T extends string>(argument: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new AdapterConfigError(
      argument,
      `unknown value ${JSON.stringify(value)}; allowed: ${allowed.join(', ')}`,
    );
  }
  return value as T;
}

/** Fills defaults and rejects specs that are malformed or that could never train. */
export function resolveAdapterSpec(spec: AdapterSpec): ResolvedAdapterSpec {
  const method = requireOneOf('method', spec.method, ADAPTER_METHODS);
  requirePositiveInteger('d_in', spec.dIn);
  requirePositiveInteger('d_out', spec.dOut);
  requirePositiveInteger('r', spec.r);
  const maxRank = Math.min(spec.dIn, spec.dOut);
  if (spec.r > maxRank) {
    throw new AdapterConfigError(
      'r',
      `${spec.r} exceeds min(d_in, d_out) = min(${spec.dIn}, ${spec.dOut}) = ${maxRank}; allowed: 1..${maxRank}`,
    );
  }
  if (!Number.isFinite(spec.alpha) || spec.alpha <= 0) {
    throw new AdapterConfigError('alpha', `must be a positive number, got ${spec.alpha}`);
  }
  const dropout = spec.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) {
    throw new AdapterConfigError('dropout', `must be in [0, 1), got ${dropout}`);
  }
  const chainLength = method === 'linchain' ? (spec.chainLength ?? DEFAULT_CHAIN_LENGTH) : 1;
  if (method === 'linchain' && (!Number.isInteger(chainLength) || chainLength < 2)) {
    throw new AdapterConfigError('chain_length', `a linchain needs an integer ≥ 2, got ${chainLength}`);
  }
  const mixerInit = requireOneOf('mixer_init', spec.mixerInit ?? 'kaiming', MIXER_INITS);
  const bInit = requireOneOf('b_init', spec.bInit ?? 'zeros', B_INITS);
  const resolved: ResolvedAdapterSpec = {
    method,
    dIn: spec.dIn,
    dOut: spec.dOut,
    r: spec.r,
    alpha: spec.alpha,
    useRslora: spec.useRslora ?? false,
    chainLength,
    mixerInit,
    bInit,
    dropout,
    useDora: spec.useDora ?? false,
  };
  rejectUntrainable(resolved);
  return resolved;
}

// Gradients of y = s·B·M·A·x: dB ∝ M·A·x, dM ∝ Bᵀ·g·(A·x)ᵀ, dA ∝ Mᵀ·Bᵀ·g.
// With B = 0 and a zero mixer all three vanish at step 0 and stay zero forever.
function rejectUntrainable(spec: ResolvedAdapterSpec): void {
  if (mixerCount(spec) === 0 || spec.mixerInit !== 'zeros') return;
  if (spec.method === 'moslora-fixed') {
    throw new AdapterConfigError(
      'mixer_init',
      "a frozen zero mixer makes the update B·M·A zero forever; use 'kaiming' (default) or 'orthogonal'",
    );
  }
  if (spec.bInit === 'zeros') {
    throw new AdapterConfigError(
      'mixer_init',
      "'zeros' with B initialised to zeros gives zero gradients for A, B and the mixer, so training " +
        "cannot start; use 'kaiming' (default), 'orthogonal' or 'identity', or set b_init to 'kaiming'",
    );
  }
}

/** s = α/r, or α/√r with rsLoRA. */
export function adapterScaling(spec: ResolvedAdapterSpec): number {
  return spec.useRslora ? spec.alpha / Math.sqrt(spec.r) : spec.alpha / spec.r;
}

/** Stored mixers: 0 for LoRA, 1 for MoSLoRA (learned or fixed), k for a linchain. */
export function mixerCount(spec: ResolvedAdapterSpec): number {
  return spec.method === 'lora' ? 0 : spec.chainLength;
}

export function mixersTrainable(spec: ResolvedAdapterSpec): boolean {
  return spec.method === 'moslora' || spec.method === 'linchain';
}

/** r·(d_in + d_out) for A and B, plus r² per learned mixer, plus d_out for DoRA's magnitude. */
export function trainableParameterCount(spec: ResolvedAdapterSpec): number {
  const mixers = mixersTrainable(spec) ? mixerCount(spec) : 0;
  return spec.r * (spec.dIn + spec.dOut) + mixers * spec.r * spec.r + (spec.useDora ? spec.dOut : 0);
}
