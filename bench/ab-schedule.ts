// How an A/B (server/ab/schedule.ts) shares the cores among its runs, measured: the same two runs
// (a config's LoRA and MoSLoRA at one seed, as written otherwise, each a trainer process as
// `moslora ab` starts them) trained three ways, in alternating rounds:
//   one_at_a_time   one after the other, the batch in one thread, its products on every core
//   side_by_side    one per core at once, the batch in one thread, its products on its core
//   shared_batch    one after the other, the batch split across a thread per core (training.workers auto)
// Each side's time is the pair's wall time, from the first fork to the last run's end.
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { median } from '../server/engine/median';
import { JobManager } from '../server/jobs/manager';
import { expectedWasmProducts } from '../server/runtime';
import type { TrainRequest } from '../protocol/trainer';

export interface AbScheduleOptions {
  config: string;
  rounds: number;
}

const SIDES = ['one_at_a_time', 'side_by_side', 'shared_batch'] as const;
type Side = (typeof SIDES)[number];

export interface AbScheduleResult {
  bench: 'ab-schedule';
  config: string;
  rounds: number;
  cores: number;
  products: string;
  /** The pair's wall time per round, seconds. */
  seconds: Record<Side, number[]>;
  median_s: Record<Side, number>;
  side_by_side_over_one_at_a_time: number;
  shared_batch_over_one_at_a_time: number;
  /** The 1-minute load average before and after: the machine may be shared. */
  load: [number, number];
}

/** Trains the requests, `atOnce` at a time; resolves with the wall seconds once all are done. */
function trainAll(requests: TrainRequest[], atOnce: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolveAll, reject) => {
    let left = requests.length;
    const jobs = new JobManager({
      trainerModule: join(__dirname, 'trainer.js'),
      maxRunning: atOnce,
      onUpdate: ({ job }) => {
        if (job.state === 'failed' || job.state === 'cancelled') reject(new Error(`${job.request.runDir}: ${job.state}: ${job.message ?? ''}`));
        if (job.state === 'done' && job.summary && --left === 0) resolveAll((performance.now() - started) / 1000);
      },
    });
    for (const request of requests) jobs.start(request);
  });
}

export async function benchAbSchedule(options: AbScheduleOptions): Promise<AbScheduleResult> {
  const cores = availableParallelism();
  const config = resolve(options.config);
  const dir = await mkdtemp(join(tmpdir(), 'moslora-bench-ab-'));
  const load: [number, number] = [loadavg()[0]!, 0];
  const seconds: Record<Side, number[]> = { one_at_a_time: [], side_by_side: [], shared_batch: [] };
  let n = 0;
  const pair = (workers: number | 'auto', runCores: number): TrainRequest[] =>
    (['lora', 'moslora'] as const).map((method) => ({ configPath: config, runDir: join(dir, `run-${n++}`), backend: 'wasm', overrides: { method, seed: 42, workers }, cores: runCores }));
  try {
    for (let round = 0; round < options.rounds; round++) {
      for (const side of round % 2 ? [...SIDES].reverse() : SIDES) {
        const requests = side === 'one_at_a_time' ? pair(1, cores) : side === 'side_by_side' ? pair(1, Math.max(1, Math.floor(cores / 2))) : pair('auto', cores);
        seconds[side].push(Number((await trainAll(requests, side === 'side_by_side' ? 2 : 1)).toFixed(1)));
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  load[1] = loadavg()[0]!;
  const median_s = Object.fromEntries(SIDES.map((side) => [side, median(seconds[side])])) as Record<Side, number>;
  return {
    bench: 'ab-schedule', config: options.config, rounds: options.rounds, cores, products: expectedWasmProducts(), seconds, median_s,
    side_by_side_over_one_at_a_time: Number((median_s.side_by_side / median_s.one_at_a_time).toFixed(2)),
    shared_batch_over_one_at_a_time: Number((median_s.shared_batch / median_s.one_at_a_time).toFixed(2)),
    load: [Number(load[0].toFixed(1)), Number(load[1].toFixed(1))],
  };
}
