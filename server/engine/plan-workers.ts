// How many threads share each micro-batch in data-parallel training (parallel.ts): what the
// engine runs with, and what the language server's memory diagnostic counts with.
import { existsSync } from 'node:fs';
import { availableParallelism, freemem } from 'node:os';
import { join } from 'node:path';
import type { BackendName } from '../../protocol/backends';
import { productEngine } from '../../kernels/backends/mlas-matmul';
import { estimateMemory, formatBytes, memoryLimit, resolveCheckpointing, type MemoryInputs } from './memory';

/** The worker's bundle, beside the bundle this runs from (dist/). */
export const SHARD_WORKER_FILE = join(__dirname, 'shard-worker.js');

/** The CPU backends, where each worker thread gets a core; a GPU backend runs the batch on its device. */
const PARALLEL_BACKENDS: readonly BackendName[] = ['wasm', 'cpu'];

/** Share of the free memory that auto lets the workers' copies of the model and activations take. */
const FREE_MEMORY_SHARE = 0.75;

/** What the plan depends on of this machine; mlas: whether the wasm backend's products run on MLAS (default: as they do in this thread now). */
interface Machine {
  cores: number;
  freeBytes: number;
  bundled: boolean;
  mlas?: boolean;
}

export interface WorkerPlan {
  /** Shards per micro-batch: this thread plus count − 1 workers. */
  count: number;
  /** Threads each of a shard's products takes where they run on MLAS (kernels/backends/mlas-matmul.ts): the cores the shards leave over, shared out; else 1. */
  productThreads: number;
  /** Why, when it is not what the setting asked for or it is more than one. */
  reason?: string;
}

/**
 * How many threads share each micro-batch. auto: one per core, at most one per row of the batch,
 * and no more than the free memory holds (each has its own copy of the model and its shard's
 * activations); on a GPU backend, or run from source without the worker's bundle, one. A number
 * is taken as it is, up to the batch's rows. The cores the shards leave (a batch of fewer rows
 * than cores, or a memory that holds fewer copies) go to their products, shared out.
 */
export function planWorkers(
  setting: number | 'auto',
  backend: BackendName,
  run: { batch: number; checkpointing: boolean | 'auto'; memory: Omit<MemoryInputs, 'checkpointing' | 'batch'> | null },
  machine: Machine = { cores: availableParallelism(), freeBytes: freemem(), bundled: existsSync(SHARD_WORKER_FILE) },
): WorkerPlan {
  if (!PARALLEL_BACKENDS.includes(backend)) {
    return setting === 'auto' || setting === 1
      ? { count: 1, productThreads: 1 }
      : { count: 1, productThreads: 1, reason: `training.workers ${setting} not used: workers split the batch across CPU cores (backends wasm, cpu); ${backend} computes the whole batch on its device` };
  }
  let count = Math.min(setting === 'auto' ? (machine.bundled ? machine.cores : 1) : setting, run.batch);
  let sharing: string | undefined;
  const why = setting === 'auto' ? `training.workers: auto, ${machine.cores} cores, batch_size ${run.batch}` : `training.workers: ${setting}, batch_size ${run.batch}`;
  if (setting === 'auto' && run.memory) {
    const perThread = (n: number) => {
      const shard = { ...run.memory!, batch: Math.ceil(run.batch / n) };
      return estimateMemory({ ...shard, checkpointing: resolveCheckpointing(run.checkpointing, shard, memoryLimit(backend)).on }).total;
    };
    const fits = (n: number) => n * perThread(n) <= FREE_MEMORY_SHARE * machine.freeBytes;
    const wanted = count;
    while (count > 1 && !fits(count)) count--;
    if (count < wanted) {
      sharing = `${count} thread${count > 1 ? 's' : ''} share each batch (${why}; ${wanted} would need an estimated ${formatBytes(wanted * perThread(wanted))}, more than ${FREE_MEMORY_SHARE * 100}% of the ${formatBytes(machine.freeBytes)} free)`;
    }
  }
  sharing ??= count > 1 ? `${count} threads share each batch (${why})` : undefined;
  const productThreads = backend === 'wasm' && (machine.mlas ?? productEngine() === 'mlas') ? Math.max(1, Math.floor(machine.cores / count)) : 1;
  if (productThreads === 1) return sharing ? { count, productThreads, reason: sharing } : { count, productThreads };
  const products = count > 1 ? "each thread's products" : 'its products';
  return { count, productThreads, reason: `${sharing ?? `one thread computes each batch (${why})`}; ${products} on ${productThreads} cores` };
}
