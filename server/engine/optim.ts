// AdamW (decoupled weight decay, bias correction: Loshchilov & Hutter), learning-rate schedules
// with warmup as Hugging Face's get_*_schedule_with_warmup, and global-norm gradient clipping as
// torch.nn.utils.clip_grad_norm_. tfjs ships Adam without decoupled decay, and keys its moments
// by variable position; these key everything by parameter name so checkpoints survive reordering.
//
// Gradients travel as one flat vector: every parameter's gradient flattened and concatenated in
// the order of the parameters' map (flatConcat). The gradient is computed that way (one
// concatenation of variableGrads' results, also what data-parallel workers send), accumulated,
// averaged and clipped as one tensor, and AdamW updates the concatenated parameters with it:
// a few kernels a step for what was a handful per parameter tensor (on a GPU, each a dispatch).
import * as tf from '@tensorflow/tfjs-core';
import { readValues, takeNumber } from '../../kernels/backends/read';

/** The tensors flattened and concatenated in order: the layout of a flat gradient. */
export function flatConcat(tensors: readonly tf.Tensor[]): tf.Tensor1D {
  return tf.tidy(() => tf.concat(tensors.map((t) => tf.reshape(t, [-1]))) as tf.Tensor1D);
}

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
}

export interface AdamWState {
  /** Optimizer steps taken. */
  step: number;
  /** First and second moments per parameter name, row-major. */
  moments: Record<string, { m: Float32Array; v: Float32Array; shape: number[] }>;
}

/** Where each parameter sits in the optimizer's flat moment vectors. */
interface Slot {
  name: string;
  shape: number[];
  size: number;
}

/**
 * The update runs on all parameters at once: the parameters are concatenated into one vector,
 * the gradient comes as one (flatConcat's layout, in the parameters' map order), the moments live
 * as one vector each, and the new values are split back. Element by element it is the same
 * arithmetic as one update per parameter (the same results to the bit), in about 20 kernels a
 * step instead of about 14 per parameter: a ~100M model's 180 adapter tensors made 2,500 tiny
 * kernels a step, each a dispatch on a GPU.
 */
export class AdamW {
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  /** The moments' layout, by parameter name in the parameters' order; empty before the first step. */
  private slots: Slot[] = [];
  private m: tf.Variable | null = null;
  private v: tf.Variable | null = null;
  private steps = 0;

  constructor(options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
  }

  get step(): number {
    return this.steps;
  }

  /**
   * One update of every named parameter, at learning rate `lr`, with `grad`: their gradients
   * flattened and concatenated in the map's order (flatConcat of them).
   */
  apply(params: ReadonlyMap<string, tf.Variable>, grad: tf.Tensor1D, lr: number): void {
    const slots = [...params].map(([name, p]) => ({ name, shape: p.shape, size: p.size }));
    const size = slots.reduce((n, slot) => n + slot.size, 0);
    if (grad.rank !== 1 || grad.size !== size) {
      throw new Error(`AdamW: the gradient has shape [${grad.shape.join(', ')}]; the ${slots.length} parameters flattened have ${size} values`);
    }
    this.relayout(slots);
    const [m, v] = [this.m!, this.v!];
    this.steps += 1;
    const t = this.steps;
    const correction1 = 1 - this.beta1 ** t;
    const correction2 = 1 - this.beta2 ** t;
    tf.tidy(() => {
      const param = flatConcat([...params.values()]);
      m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(grad, 1 - this.beta1)));
      v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(grad), 1 - this.beta2)));
      // p ← p·(1 − lr·λ) − lr · m̂ / (√v̂ + ε), with m̂ = m / (1 − β1ᵗ), v̂ = v / (1 − β2ᵗ)
      const decayed = this.weightDecay > 0 ? tf.mul(param, 1 - lr * this.weightDecay) : param;
      const update = tf.div(tf.div(m, correction1), tf.add(tf.sqrt(tf.div(v, correction2)), this.epsilon));
      const next = tf.split(tf.sub(decayed, tf.mul(update, lr)), slots.map((slot) => slot.size));
      slots.forEach((slot, i) => params.get(slot.name)!.assign(tf.reshape(next[i]!, slot.shape)));
    });
  }

  /**
   * One training step's update: the flat gradient clipped to `maxNorm` (when set, see
   * clipByGlobalNorm), then apply. Returns the gradient's norm before clipping; `grad` stays the
   * caller's.
   */
  async applyClipped(params: ReadonlyMap<string, tf.Variable>, grad: tf.Tensor1D, lr: number, maxNorm: number | undefined): Promise<number> {
    const { norm, grad: clipped } = await clipByGlobalNorm(grad, maxNorm);
    this.apply(params, clipped, lr);
    if (clipped !== grad) clipped.dispose();
    return norm;
  }

  /** Lays the moments out for these parameters, keeping each one's moments by name (zeros if new). */
  private relayout(slots: Slot[]): void {
    const same = slots.length === this.slots.length && slots.every((s, i) => s.name === this.slots[i]!.name && s.size === this.slots[i]!.size);
    if (same && this.m) return;
    const keep = (flat: tf.Variable | null) =>
      tf.tidy(() => {
        const old = new Map<string, tf.Tensor>();
        if (flat) tf.split(flat, this.slots.map((s) => s.size)).forEach((piece, i) => old.set(this.slots[i]!.name, piece));
        return tf.concat(slots.map((s) => (old.get(s.name)?.size === s.size ? old.get(s.name)! : tf.zeros([s.size]))));
      });
    const [m, v] = [keep(this.m), keep(this.v)];
    this.dispose();
    this.m = tf.variable(m, false);
    this.v = tf.variable(v, false);
    tf.dispose([m, v]);
    this.slots = slots;
  }

  async getState(): Promise<AdamWState> {
    const moments: AdamWState['moments'] = {};
    if (this.m && this.v) {
      const [m, v] = [(await readValues(this.m)) as Float32Array, (await readValues(this.v)) as Float32Array];
      let offset = 0;
      for (const { name, shape, size } of this.slots) {
        moments[name] = { m: m.slice(offset, offset + size), v: v.slice(offset, offset + size), shape };
        offset += size;
      }
    }
    return { step: this.steps, moments };
  }

  setState(state: AdamWState): void {
    this.dispose();
    this.steps = state.step;
    const entries = Object.entries(state.moments).sort(([a], [b]) => (a < b ? -1 : 1));
    if (entries.length === 0) return;
    this.slots = entries.map(([name, { m, shape }]) => ({ name, shape, size: m.length }));
    const join = (pick: (moment: { m: Float32Array; v: Float32Array }) => Float32Array) => {
      const out = new Float32Array(this.slots.reduce((n, s) => n + s.size, 0));
      let offset = 0;
      for (const [, moment] of entries) {
        out.set(pick(moment), offset);
        offset += pick(moment).length;
      }
      return out;
    };
    const [m, v] = [tf.tensor1d(join((x) => x.m)), tf.tensor1d(join((x) => x.v))];
    this.m = tf.variable(m, false);
    this.v = tf.variable(v, false);
    tf.dispose([m, v]);
  }

  dispose(): void {
    this.m?.dispose();
    this.v?.dispose();
    this.m = null;
    this.v = null;
    this.slots = [];
  }
}

export type ScheduleName = 'linear' | 'cosine' | 'constant';

/**
 * The multiplier of the peak learning rate before optimizer step `step` (0-based), as Hugging
 * Face's schedules compute it: linear warmup from 0, then linear or cosine decay to 0 at
 * `totalSteps`, or constant.
 */
export function scheduleFactor(schedule: ScheduleName, step: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  if (schedule === 'constant') return 1;
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  if (schedule === 'linear') return Math.max(0, 1 - progress);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
}

/**
 * Scales a flat gradient so that its L2 norm (the global norm of the parameters' gradients) is
 * at most `maxNorm`, as torch.nn.utils.clip_grad_norm_ (coefficient maxNorm / (norm + 1e-6),
 * never above 1). Returns the norm before clipping and the gradient: `grad` itself when nothing
 * is scaled, else a new tensor; the caller owns both.
 */
export async function clipByGlobalNorm(grad: tf.Tensor1D, maxNorm: number | undefined): Promise<{ norm: number; grad: tf.Tensor1D }> {
  const norm = Math.sqrt(await takeNumber(tf.tidy(() => tf.sum(tf.square(grad)))));
  const coefficient = maxNorm === undefined ? 1 : Math.min(1, maxNorm / (norm + 1e-6));
  if (coefficient >= 1) return { norm, grad };
  return { norm, grad: tf.mul(grad, coefficient) };
}
