// Data-parallel workers (server/engine/parallel.ts) on the tiny model for the tests that start
// them directly: one MoSLoRA adapter (r 2) on the first layer's q_proj, zeros, 516 values in all.
import { join } from 'node:path';
import { resolveAdapterSpec } from '../../kernels/adapter/spec';
import type { BackendName } from '../../protocol/backends';
import type { ShardWorkerInit } from '../../server/engine/parallel';

export const SHARD_WORKER = join(import.meta.dirname, '..', '..', 'dist', 'shard-worker.js');
/** The adapter's values, flattened: A, B and the mixer. */
export const SHARD_PARAMS = 516;

export function shardInit(modelDir: string, backend: BackendName): ShardWorkerInit {
  const spec = resolveAdapterSpec({ method: 'moslora', dIn: 128, dOut: 128, r: 2, alpha: 4 });
  return {
    backend,
    modelDir,
    productThreads: 1,
    adapters: [{ module: 'model.layers.0.self_attn.q_proj', spec, A: new Float32Array(2 * 128), B: new Float32Array(128 * 2), mixers: [new Float32Array(4)] }],
    load: {},
  };
}
