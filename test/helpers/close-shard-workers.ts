// Run by test/integration/parallel.test.ts in a process of its own, as what it checks can abort
// the whole process: closing data-parallel workers (server/engine/parallel.ts) in the middle of
// their work. Each round starts workers on the wasm backend, hands them a shard large enough
// that most of its time is spent in onnxruntime's native products, and closes the pool while
// they compute; then starts workers on a missing model, whose start fails and closes the pool
// while the other workers still load. Prints the rounds done.
import { join } from 'node:path';
import { resolveAdapterSpec } from '../../kernels/adapter/spec';
import { ShardWorkers, type ShardWorkerInit } from '../../server/engine/parallel';

const ROOT = join(import.meta.dirname, '..', '..');
const WORKER = join(ROOT, 'dist', 'shard-worker.js');
const spec = resolveAdapterSpec({ method: 'moslora', dIn: 128, dOut: 128, r: 2, alpha: 4 });
const init = (modelDir: string): ShardWorkerInit => ({
  backend: 'wasm',
  modelDir,
  productThreads: 1,
  adapters: [{ module: 'model.layers.0.self_attn.q_proj', spec, A: new Float32Array(2 * 128), B: new Float32Array(128 * 2), mixers: [new Float32Array(4)] }],
  load: {},
});
const rows = Array.from({ length: 8 }, () => Array.from({ length: 128 }, (_, i) => (i % 100) + 1));
const shard = { inputIds: rows, labels: rows, firstSequence: 0 };

async function main(): Promise<void> {
  const rounds = Number(process.argv[2]);
  for (let round = 0; round < rounds; round++) {
    const workers = await ShardWorkers.start(2, init(join(ROOT, 'examples', 'tiny-model')), WORKER);
    workers.setParams(new Float32Array(516));
    void workers.gradients([shard, shard], { dropoutSeed: 1, checkpoint: false }).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await workers.close();
    await ShardWorkers.start(3, init(join(ROOT, 'no-such-model')), WORKER).then(
      () => Promise.reject(new Error('workers started on a missing model')),
      () => undefined,
    );
  }
  console.log(JSON.stringify({ rounds }));
}

void main();
