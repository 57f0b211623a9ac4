// Forward + backward of one adapted layer in training (dropout 0.05, the config's default), LoRA vs
// MoSLoRA, alternating in one process so that both see the same machine load; where the backend
// has the fused adapter kernels (webgpu), MoSLoRA as tfjs ops (the composite version) too, and
// each side's dispatches. The ratios are the figures that matter; absolute times are only
// meaningful on a quiet, known machine. The goal is read on the mean of each side's fastest tenth
// of steps: on a shared host other tenants add up to three times a step's own time to some steps
// (20 ms steps measured at 20–80 ms) and never take any away, so the fastest steps are the code's
// cost, and the medians (kept beside them) are the host's load as much as the code's. A tenth,
// not the single fastest step, so that one lucky step does not decide.
import * as tf from '@tensorflow/tfjs-core';
import { resolveAdapterSpec } from '../kernels/adapter/spec';
import type { BackendChoice } from '../protocol/backends';
import { initAdapterWeights } from '../kernels/adapter/init';
import { fusedAdapterAvailable } from '../kernels/adapter/fused-adapter';
import { adaptedLinear, type Adapter, type BaseLinear } from '../kernels/adapter/linear';
import { readValues } from '../kernels/backends/read';
import { median } from '../server/engine/median';
import { computingKernels, inTurn } from './measure';
import type { AdapterMethod } from '../protocol/methods';

export interface KernelBenchOptions {
  dim: number;
  rank: number;
  tokens: number;
  rounds: number;
  warmup: number;
}

export interface KernelBenchResult {
  bench: 'kernels';
  backend: string;
  device: string;
  dim: number;
  rank: number;
  tokens: number;
  dropout: number;
  rounds: number;
  lora_median_ms: number;
  moslora_median_ms: number;
  moslora_over_lora: number;
  /** Mean of the side's fastest tenth of steps. */
  lora_fastest_ms: number;
  moslora_fastest_ms: number;
  /** The goal's figure: MoSLoRA's fastest tenth over LoRA's. */
  moslora_over_lora_fastest: number;
  /** MoSLoRA as tfjs ops, where the fused kernels run (webgpu); else null. */
  composite_median_ms: number | null;
  fused_over_composite: number | null;
  /** Computing kernels (dispatches on a GPU) of one MoSLoRA step, fused and composite. */
  dispatches_fused: number | null;
  dispatches_composite: number | null;
}

const DROPOUT = 0.05;

/** Mean of the fastest tenth of `times` (at least one). */
export function fastestTenth(times: readonly number[]): number {
  const fastest = [...times].sort((a, b) => a - b).slice(0, Math.max(1, Math.round(times.length / 10)));
  return fastest.reduce((sum, t) => sum + t, 0) / fastest.length;
}

export async function benchKernels(choice: BackendChoice, options: KernelBenchOptions): Promise<KernelBenchResult> {
  const { dim, rank, tokens } = options;
  const base: BaseLinear = { weight: tf.randomNormal([dim, dim], 0, 0.02, 'float32', 1) as tf.Tensor2D, layout: 'out_in' };
  const x = tf.randomNormal([tokens, dim], 0, 1, 'float32', 2);
  const dy = tf.randomNormal([tokens, dim], 0, 1, 'float32', 3);
  const methods: AdapterMethod[] = ['lora', 'moslora'];
  const adapters = methods.map((method): Adapter => {
    const spec = resolveAdapterSpec({ method, dIn: dim, dOut: dim, r: rank, alpha: 2 * rank, bInit: 'kaiming', dropout: DROPOUT });
    const init = initAdapterWeights(spec, 4);
    return { spec, weights: { A: tf.variable(init.A), B: tf.variable(init.B), mixers: init.mixers.map((m) => tf.variable(m)) } };
  });

  // One training step: forward, then the gradients of every trainable factor and of the input.
  const gradients = (adapter: Adapter, composite: boolean, seed: number) =>
    tf.tidy(() => {
      const forward = (): tf.Scalar => tf.sum(tf.mul(adaptedLinear(x, base, adapter, { training: true, dropoutSeed: seed, composite }), dy));
      const { value, grads } = tf.variableGrads(forward);
      return [value, ...Object.values(grads)];
    });
  const step = async (adapter: Adapter, composite: boolean, seed: number): Promise<number> => {
    const started = performance.now();
    const grads = gradients(adapter, composite, seed);
    await Promise.all(grads.map((g) => readValues(g)));
    tf.dispose(grads);
    return performance.now() - started;
  };

  const moslora = adapters[1]!;
  const fused = fusedAdapterAvailable(rank);
  // LoRA, MoSLoRA, and MoSLoRA as tfjs ops where that is another path
  const sides: [Adapter, boolean][] = [[adapters[0]!, false], [moslora, false], ...(fused ? [[moslora, true] as [Adapter, boolean]] : [])];
  const times: number[][] = sides.map(() => []);
  for (let round = 0; round < options.warmup + options.rounds; round++) {
    for (const i of inTurn([...sides.keys()], round)) {
      const ms = await step(sides[i]![0], sides[i]![1], round);
      if (round >= options.warmup) times[i]!.push(ms);
    }
  }
  const dispatches = async (composite: boolean) => {
    const { kernels, result } = await tf.profile(() => gradients(moslora, composite, 0));
    tf.dispose(result as tf.Tensor[]);
    return computingKernels(kernels.map((k) => k.name)).length;
  };
  const [loraMs, mosloraMs, compositeMs] = times.map(median) as [number, number, number | undefined];
  const [loraFastest, mosloraFastest] = times.map(fastestTenth) as [number, number];
  return {
    bench: 'kernels',
    backend: choice.backend,
    device: choice.device,
    dim,
    rank,
    tokens,
    dropout: DROPOUT,
    rounds: options.rounds,
    lora_median_ms: Number(loraMs.toFixed(3)),
    moslora_median_ms: Number(mosloraMs.toFixed(3)),
    moslora_over_lora: Number((mosloraMs / loraMs).toFixed(4)),
    lora_fastest_ms: Number(loraFastest.toFixed(3)),
    moslora_fastest_ms: Number(mosloraFastest.toFixed(3)),
    moslora_over_lora_fastest: Number((mosloraFastest / loraFastest).toFixed(4)),
    composite_median_ms: compositeMs === undefined ? null : Number(compositeMs.toFixed(3)),
    fused_over_composite: compositeMs === undefined ? null : Number((mosloraMs / compositeMs).toFixed(4)),
    dispatches_fused: fused ? await dispatches(false) : null,
    dispatches_composite: fused ? await dispatches(true) : null,
  };
}
