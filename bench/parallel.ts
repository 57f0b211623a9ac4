// What data parallelism across processes could give on this machine: the training workload's
// batch run by one process, against the same batch split across N processes (each its own
// single-threaded wasm backend) running at once. Compute only: no gradient exchange (the adapter's
// gradients, ~7 MB a step at ~100M, are small next to a step), so the ratio is an upper bound.
// The wasm backend runs on one thread in Node (tfjs#3830); this is the lever that is left.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { median } from '../server/engine/median';
import { loadBenchModel, TrainingWorkload } from './workload';

export interface ShardOptions {
  model: string;
  batch: number;
  tokens: number;
  rank: number;
  steps: number;
  checkpointing: boolean;
}

export interface ParallelBenchResult {
  bench: 'parallel';
  backend: 'wasm';
  model: string;
  batch: number;
  tokens: number;
  rank: number;
  checkpointing: boolean;
  processes: number;
  rounds: number;
  one_process_ms: number;
  split_ms: number;
  speedup_upper_bound: number;
}

/** In a child process: median milliseconds per step of this shard, after one warm-up step. */
export async function shardSteps(options: ShardOptions): Promise<number> {
  const model = await loadBenchModel(options.model);
  const workload = new TrainingWorkload(model, options);
  await workload.step(0);
  return median((await workload.timedSteps(1, options.steps)).ms);
}

/** Runs the shards at once, one process each; the slowest shard's time per step. */
async function together(shards: ShardOptions[]): Promise<number> {
  const run = (shard: ShardOptions) =>
    promisify(execFile)(process.execPath, [...process.execArgv, process.argv[1]!, 'parallel', '--shard', JSON.stringify(shard)], { maxBuffer: 1 << 20 });
  const outputs = await Promise.all(shards.map(run));
  return Math.max(...outputs.map(({ stdout }) => Number(stdout.trim().split('\n').at(-1))));
}

export async function benchParallel(options: Omit<ShardOptions, 'batch'> & { batch: number; processes: number; rounds: number }): Promise<ParallelBenchResult> {
  if (options.batch % options.processes !== 0) throw new Error(`--batch ${options.batch} does not split into ${options.processes} equal shards`);
  const one: number[] = [];
  const split: number[] = [];
  for (let round = 0; round < options.rounds; round++) {
    one.push(await together([options]));
    split.push(await together(Array.from({ length: options.processes }, () => ({ ...options, batch: options.batch / options.processes }))));
  }
  const [o, s] = [median(one), median(split)];
  return {
    bench: 'parallel', backend: 'wasm', model: options.model, batch: options.batch, tokens: options.tokens, rank: options.rank, checkpointing: options.checkpointing,
    processes: options.processes, rounds: options.rounds, one_process_ms: Math.round(o), split_ms: Math.round(s), speedup_upper_bound: Number((o / s).toFixed(2)),
  };
}
