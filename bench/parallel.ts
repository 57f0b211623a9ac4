// Data-parallel training as the engine runs it (server/engine/parallel.ts): the training
// workload's step in this thread alone, against the same step with its batch split across this
// thread and worker threads (each its own single-threaded wasm backend and copy of the model),
// gradients and parameters exchanged every step. The two sides alternate rounds, start from the
// same adapters and take the same steps with the same seeds, so their losses must agree too.
import { median } from '../server/engine/median';
import { CausalLM } from '../server/models/model';
import { TrainingWorkload, withBenchModel, type WorkloadOptions, type WorkloadRecord } from './workload';

export interface ParallelOptions extends WorkloadOptions {
  model: string;
  threads: number;
  steps: number;
  rounds: number;
}

export interface ParallelBenchResult extends WorkloadRecord {
  bench: 'parallel';
  threads: number;
  steps: number;
  rounds: number;
  one_thread_ms: number;
  threads_ms: number;
  speedup: number;
  /** max |loss₁ − loss_N| / loss₁ over every step both sides took. */
  max_loss_rel_diff: number;
}

export async function benchParallel(backend: string, options: ParallelOptions): Promise<ParallelBenchResult> {
  return withBenchModel(options.model, async (dir) => {
    const model = await CausalLM.load(dir);
    const one = new TrainingWorkload(model, options);
    const shared = new TrainingWorkload(model, options);
    try {
      await shared.shareWith(options.threads - 1, dir);
      // a warm-up step each, then rounds of the same steps on both sides
      const losses: [number[], number[]] = [[await one.step(0)], [await shared.step(0)]];
      const ms: [number[], number[]] = [[], []];
      for (let round = 0; round < options.rounds; round++) {
        const first = 1 + round * options.steps;
        for (const [side, workload] of [one, shared].entries()) {
          const timed = await workload.timedSteps(first, options.steps);
          ms[side]!.push(...timed.ms);
          losses[side]!.push(...timed.losses);
        }
      }
      const [o, s] = [median(ms[0]), median(ms[1])];
      return {
        bench: 'parallel', backend, model: options.model, batch: options.batch, tokens: one.tokens, rank: options.rank, checkpointing: options.checkpointing,
        threads: options.threads, steps: options.steps, rounds: options.rounds, one_thread_ms: Math.round(o), threads_ms: Math.round(s), speedup: Number((o / s).toFixed(2)),
        max_loss_rel_diff: Number(Math.max(...losses[0].map((l, i) => Math.abs(l - losses[1][i]!) / l)).toPrecision(2)),
      };
    } finally {
      await Promise.all([one.dispose(), shared.dispose()]);
      model.dispose();
    }
  });
}
