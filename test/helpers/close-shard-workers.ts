// Run by test/integration/parallel.test.ts in a process of its own, as what it checks can abort
// the whole process: closing data-parallel workers (server/engine/parallel.ts) in the middle of
// their work. Each round starts workers on the wasm backend, hands them a shard large enough
// that most of its time is spent in onnxruntime's native products, and closes the pool while
// they compute; then starts workers on a missing model, whose start fails and closes the pool
// while the other workers still load. Prints the rounds done.
import { join } from 'node:path';
import { ShardWorkers } from '../../server/engine/parallel';
import { SHARD_PARAMS, SHARD_WORKER, shardInit } from './shard-workers';
import { TINY_MODEL } from './tiny-models';

const rows = Array.from({ length: 8 }, () => Array.from({ length: 128 }, (_, i) => (i % 100) + 1));
const shard = { inputIds: rows, labels: rows, firstSequence: 0 };

async function main(): Promise<void> {
  const rounds = Number(process.argv[2]);
  for (let round = 0; round < rounds; round++) {
    const workers = await ShardWorkers.start(2, shardInit(TINY_MODEL, 'wasm'), SHARD_WORKER);
    workers.setParams(new Float32Array(SHARD_PARAMS));
    void workers.gradients([shard, shard], { dropoutSeed: 1, checkpoint: false }).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await workers.close();
    await ShardWorkers.start(3, shardInit(join(TINY_MODEL, 'no-such-model'), 'wasm'), SHARD_WORKER).then(
      () => Promise.reject(new Error('workers started on a missing model')),
      () => undefined,
    );
  }
  console.log(JSON.stringify({ rounds }));
}

void main();
