// The kernel demo: LoRA and MoSLoRA adapters learn the same low-rank change of one linear
// layer, side by side, with the same seed; then the MoSLoRA adapter is merged and folded.
// `moslora kernel-demo`; `moslora demo` is the full job on the tiny shipped model.
import * as tf from '@tensorflow/tfjs-core';
import { resolveAdapterSpec, trainableParameterCount, type MixerInit } from '../../kernels/adapter/spec';
import { initAdapterWeights } from '../../kernels/adapter/init';
import { adaptedLinear, type Adapter, type BaseLinear } from '../../kernels/adapter/linear';
import { foldToLora, mergeWeight } from '../../kernels/adapter/merge';
import { maxAbsDifference, readValues, takeNumber } from '../../kernels/backends/read';
import { mixerStats } from '../../kernels/adapter/stats';
import { median } from '../engine/median';
import type { AdapterMethod } from '../../protocol/methods';

export interface DemoOptions {
  steps: number;
  dim: number;
  rank: number;
  seed: number;
  log: (line: string) => void;
}

interface DemoRun {
  label: string;
  adapter: Adapter;
  /** Smallest singular value of the initial mixer: a near-singular start slows MoSLoRA down. */
  initMinSingular: number | null;
  losses: number[];
  stepMs: number[];
}

export async function runKernelDemo(options: DemoOptions): Promise<void> {
  const { steps, dim, rank, seed, log } = options;
  // A frozen base layer and a target change of rank `rank` that the adapters must learn.
  const base: BaseLinear = { weight: tf.randomNormal([dim, dim], 0, 1 / Math.sqrt(dim), 'float32', seed) as tf.Tensor2D, layout: 'out_in' };
  const targetDelta = tf.tidy(() =>
    tf.matMul(tf.randomNormal([dim, rank], 0, 0.5, 'float32', seed + 1), tf.randomNormal([rank, dim], 0, 1 / Math.sqrt(dim), 'float32', seed + 2)),
  );
  const x = tf.randomNormal([256, dim], 0, 1, 'float32', seed + 3);
  const target = tf.tidy(() => tf.matMul(x, tf.add(base.weight, targetDelta), false, true));

  const variants: { label: string; method: AdapterMethod; mixerInit: MixerInit }[] = [
    { label: 'lora', method: 'lora', mixerInit: 'kaiming' },
    { label: 'moslora/kaiming', method: 'moslora', mixerInit: 'kaiming' },
    { label: 'moslora/orthogonal', method: 'moslora', mixerInit: 'orthogonal' },
  ];
  const runs: DemoRun[] = [];
  for (const { label, method, mixerInit } of variants) {
    const spec = resolveAdapterSpec({ method, dIn: dim, dOut: dim, r: rank, alpha: 2 * rank, mixerInit });
    const init = initAdapterWeights(spec, seed + 10);
    const initMinSingular = init.mixers.length ? mixerStats(await readValues(init.mixers[0]!), rank).singularValues.at(-1)! : null;
    const weights = { A: tf.variable(init.A), B: tf.variable(init.B), mixers: init.mixers.map((m) => tf.variable(m)) };
    runs.push({ label, adapter: { spec, weights }, initMinSingular, losses: [], stepMs: [] });
  }
  const optimizers = runs.map(() => tf.train.adam(3e-3));

  log(`task: learn a rank-${rank} change of a ${dim}×${dim} layer from 256 examples; ${steps} Adam steps each, same seed`);
  for (let step = 0; step < steps; step++) {
    // Alternate the methods every step so that all see the same machine load.
    for (const [i, run] of runs.entries()) {
      const { A, B, mixers } = run.adapter.weights;
      const started = performance.now();
      const loss = optimizers[i]!.minimize(
        () => tf.losses.meanSquaredError(target, adaptedLinear(x, base, run.adapter)) as tf.Scalar,
        true,
        [A, B, ...mixers] as tf.Variable[],
      )!;
      run.losses.push(await takeNumber(loss));
      run.stepMs.push(performance.now() - started);
    }
    if (step % Math.max(1, Math.floor(steps / 8)) === 0 || step === steps - 1) {
      log(`step ${String(step + 1).padStart(4)}  ${runs.map((r) => `${r.label} ${r.losses[step]!.toExponential(3)}`).join('   ')}`);
    }
  }

  log('');
  log('method               trainable params   final loss   median step   mixer σ_min at init');
  for (const run of runs) {
    log(
      `${run.label.padEnd(20)} ${String(trainableParameterCount(run.adapter.spec)).padStart(16)}   ${run.losses.at(-1)!.toExponential(3).padStart(10)}   ${median(run.stepMs).toFixed(1).padStart(8)} ms   ${run.initMinSingular === null ? '-' : run.initMinSingular.toFixed(3)}`,
    );
  }
  log('(a mixer that starts nearly singular mixes r subspaces into fewer; an orthogonal start keeps all r)');

  const moslora = runs[1]!.adapter;
  const merged: BaseLinear = { ...base, weight: await mergeWeight(base, moslora.spec, moslora.weights) };
  const mergeError = await maxAbsDifference(() => [adaptedLinear(x, merged, null), adaptedLinear(x, base, moslora)]);
  merged.weight.dispose();
  const folded = foldToLora(moslora.weights);
  const asLora: Adapter = { spec: resolveAdapterSpec({ ...moslora.spec, method: 'lora' }), weights: { ...folded, mixers: [] } };
  const foldError = await maxAbsDifference(() => [adaptedLinear(x, base, asLora), adaptedLinear(x, base, moslora)]);
  tf.dispose([folded.A, folded.B]);
  log('');
  log(`merge W + s·B·M·A into the base: max abs output difference ${mergeError.toExponential(2)}`);
  log(`fold to plain LoRA (A′ = M·A):    max abs output difference ${foldError.toExponential(2)}`);
  const stats = mixerStats(await readValues(moslora.weights.mixers[0]!), rank);
  log(`learned mixer: ‖M − I‖_F = ${stats.distanceFromIdentity.toFixed(3)}, singular values ${stats.singularValues.map((s) => s.toFixed(2)).join(' ')}`);
}
