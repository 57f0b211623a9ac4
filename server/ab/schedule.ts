// How an A/B shares the machine among its runs: how many train at once, and the cores of each.
//
// Each run computes its batch in one thread (training.workers 1) and gets cores/atOnce cores for
// its products. Measured (`npm run bench -- ab-schedule`, bench/results/ab-schedule.jsonl): on
// wasm with MLAS's products, two runs of the tiny example config finished sooner one at a time
// with their products on both cores than side by side with a core each, and sooner than one at a
// time with the batch split across a thread per core (training.workers auto). So where products
// use several cores (wasm on MLAS) runs go one at a time; where each run is single-threaded
// (XNNPACK's products, the cpu backend; not measured: one run would leave the other cores idle)
// one per core, as many as memory holds; a GPU backend trains one run at a time on its device.
import type { BackendName } from '../../protocol/backends';
import { formatBytes } from '../engine/memory';

/** Share of the free memory the runs at once may take, as planWorkers allows its threads. */
const FREE_MEMORY_SHARE = 0.75;

export interface Schedule {
  atOnce: number;
  coresPerRun: number;
  /** Why, in words, for the A/B's first lines. */
  reason: string;
}

export interface ScheduleInputs {
  /** --parallel: a number of runs at once, or auto. */
  setting: number | 'auto';
  /** Runs left to train. */
  runs: number;
  backend: BackendName;
  /** Whether the wasm backend's products run on MLAS (several threads). */
  mlas: boolean;
  cores: number;
  freeBytes: number;
  /** One run's estimated peak, its process included; null when unknown. */
  runBytes: number | null;
}

export function planSchedule(i: ScheduleInputs): Schedule {
  const runs = Math.max(1, i.runs);
  const cpu = i.backend === 'wasm' || i.backend === 'cpu';
  const memoryHolds = i.runBytes === null ? 1 : Math.max(1, Math.floor((FREE_MEMORY_SHARE * i.freeBytes) / i.runBytes));
  const memoryNote = i.runBytes === null ? '' : ` (each needs an estimated ${formatBytes(i.runBytes)}; ${FREE_MEMORY_SHARE * 100}% of the ${formatBytes(i.freeBytes)} free holds ${memoryHolds})`;
  const of = (atOnce: number, reason: string): Schedule => ({ atOnce, coresPerRun: Math.max(1, Math.floor(i.cores / atOnce)), reason });
  if (!cpu) {
    return of(1, `one run at a time: ${i.backend} trains on one device${i.setting !== 'auto' && i.setting > 1 ? ` (--parallel ${i.setting} applies to the CPU backends)` : ''}`);
  }
  if (i.setting !== 'auto') {
    const wanted = Math.min(i.setting, runs);
    const atOnce = Math.min(wanted, memoryHolds);
    return of(atOnce, atOnce < wanted ? `${atOnce} run${atOnce > 1 ? 's' : ''} at a time, not ${wanted} (--parallel ${i.setting}): memory${memoryNote}` : `${atOnce} run${atOnce > 1 ? 's' : ''} at a time (--parallel ${i.setting})`);
  }
  if (i.backend === 'wasm' && i.mlas) {
    return of(1, `one run at a time, its products on ${i.cores} core${i.cores > 1 ? 's' : ''} (MLAS): faster here than runs side by side`);
  }
  const atOnce = Math.max(1, Math.min(i.cores, runs, memoryHolds));
  const limit = atOnce < Math.min(i.cores, runs) ? `, as memory allows${memoryNote}` : '';
  return of(atOnce, `${atOnce} run${atOnce > 1 ? 's' : ''} at a time, one core each${limit}`);
}
