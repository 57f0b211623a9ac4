// AdamW (decoupled weight decay, bias correction: Loshchilov & Hutter), learning-rate schedules
// with warmup as Hugging Face's get_*_schedule_with_warmup, and global-norm gradient clipping as
// torch.nn.utils.clip_grad_norm_. tfjs ships Adam without decoupled decay, and keys its moments
// by variable position; these key everything by parameter name so checkpoints survive reordering.
import * as tf from '@tensorflow/tfjs-core';
import { readValues, takeValues } from '../../kernels/read';

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

export class AdamW {
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
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

  /** One update of every named parameter with its gradient, at learning rate `lr`. */
  apply(params: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    this.steps += 1;
    const t = this.steps;
    const correction1 = 1 - this.beta1 ** t;
    const correction2 = 1 - this.beta2 ** t;
    for (const [name, param] of params) {
      const grad = grads.get(name);
      if (!grad) throw new Error(`AdamW: no gradient for parameter "${name}"`);
      const m = this.moment(this.m, name, param);
      const v = this.moment(this.v, name, param);
      tf.tidy(() => {
        m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(grad, 1 - this.beta1)));
        v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(grad), 1 - this.beta2)));
        // p ← p·(1 − lr·λ) − lr · m̂ / (√v̂ + ε), with m̂ = m / (1 − β1ᵗ), v̂ = v / (1 − β2ᵗ)
        const decayed = this.weightDecay > 0 ? tf.mul(param, 1 - lr * this.weightDecay) : param;
        const update = tf.div(tf.div(m, correction1), tf.add(tf.sqrt(tf.div(v, correction2)), this.epsilon));
        param.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
  }

  private moment(store: Map<string, tf.Variable>, name: string, like: tf.Tensor): tf.Variable {
    let moment = store.get(name);
    if (!moment) {
      moment = tf.variable(tf.zerosLike(like), false);
      store.set(name, moment);
    }
    return moment;
  }

  async getState(): Promise<AdamWState> {
    const moments: AdamWState['moments'] = {};
    for (const [name, m] of this.m) {
      moments[name] = { m: (await readValues(m)) as Float32Array, v: (await readValues(this.v.get(name)!)) as Float32Array, shape: m.shape };
    }
    return { step: this.steps, moments };
  }

  setState(state: AdamWState): void {
    this.dispose();
    this.steps = state.step;
    for (const [name, { m, v, shape }] of Object.entries(state.moments)) {
      this.m.set(name, tf.variable(tf.tensor(m, shape), false));
      this.v.set(name, tf.variable(tf.tensor(v, shape), false));
    }
  }

  dispose(): void {
    for (const store of [this.m, this.v]) {
      for (const variable of store.values()) variable.dispose();
      store.clear();
    }
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
 * Scales the gradients so that their global L2 norm is at most `maxNorm`, as
 * torch.nn.utils.clip_grad_norm_ (coefficient maxNorm / (norm + 1e-6), never above 1).
 * Returns the norm before clipping and the (possibly new) gradients; the caller owns both maps.
 */
export async function clipByGlobalNorm(
  grads: ReadonlyMap<string, tf.Tensor>,
  maxNorm: number | undefined,
): Promise<{ norm: number; grads: Map<string, tf.Tensor> }> {
  // stack, not addN: the webgpu backend binds every addN input at once, past the GPU's limit
  // on storage buffers (8 is common); its concat splits its inputs to stay within it.
  const squares = tf.tidy(() => tf.sum(tf.stack([...grads.values()].map((g) => tf.sum(tf.square(g))))));
  const norm = Math.sqrt((await takeValues(squares))[0]!);
  const coefficient = maxNorm === undefined ? 1 : Math.min(1, maxNorm / (norm + 1e-6));
  if (coefficient >= 1) return { norm, grads: new Map(grads) };
  return { norm, grads: new Map([...grads].map(([name, g]) => [name, tf.mul(g, coefficient)])) };
}
