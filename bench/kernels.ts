// Forward + backward of one adapted layer, LoRA vs MoSLoRA, alternating in one process so that
// both see the same machine load. The ratio is the figure that matters; absolute times are only
// meaningful on a quiet, known machine.
import * as tf from '@tensorflow/tfjs-core';
import { resolveAdapterSpec, type AdapterMethod } from '../kernels/adapter';
import type { BackendChoice } from '../kernels/backend';
import { initAdapterWeights } from '../kernels/init';
import { adaptedLinear, type Adapter, type BaseLinear } from '../kernels/linear';
import { readValues } from '../kernels/read';
import { median } from '../server/engine/median';

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
  rounds: number;
  lora_median_ms: number;
  moslora_median_ms: number;
  moslora_over_lora: number;
}

export async function benchKernels(choice: BackendChoice, options: KernelBenchOptions): Promise<KernelBenchResult> {
  const { dim, rank, tokens } = options;
  const base: BaseLinear = { weight: tf.randomNormal([dim, dim], 0, 0.02, 'float32', 1) as tf.Tensor2D, layout: 'out_in' };
  const x = tf.randomNormal([tokens, dim], 0, 1, 'float32', 2);
  const dy = tf.randomNormal([tokens, dim], 0, 1, 'float32', 3);
  const methods: AdapterMethod[] = ['lora', 'moslora'];
  const adapters = methods.map((method): Adapter => {
    const spec = resolveAdapterSpec({ method, dIn: dim, dOut: dim, r: rank, alpha: 2 * rank, bInit: 'kaiming' });
    const init = initAdapterWeights(spec, 4);
    return { spec, weights: { A: tf.variable(init.A), B: tf.variable(init.B), mixers: init.mixers.map((m) => tf.variable(m)) } };
  });

  // One step: forward, then the gradients of every trainable factor and of the input.
  const step = async (adapter: Adapter): Promise<number> => {
    const started = performance.now();
    const grads = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(adaptedLinear(x, base, adapter), dy)));
      return [value, ...Object.values(grads)];
    });
    await Promise.all(grads.map((g) => readValues(g)));
    tf.dispose(grads);
    return performance.now() - started;
  };

  const times: number[][] = methods.map(() => []);
  for (let round = 0; round < options.warmup + options.rounds; round++) {
    // Alternate which method goes first, so neither always runs on a warmer cache.
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) {
      const ms = await step(adapters[i]!);
      if (round >= options.warmup) times[i]!.push(ms);
    }
  }
  const [lora, moslora] = times.map(median) as [number, number];
  return {
    bench: 'kernels',
    backend: choice.backend,
    device: choice.device,
    dim,
    rank,
    tokens,
    rounds: options.rounds,
    lora_median_ms: Number(lora.toFixed(3)),
    moslora_median_ms: Number(moslora.toFixed(3)),
    moslora_over_lora: Number((moslora / lora).toFixed(4)),
  };
}
