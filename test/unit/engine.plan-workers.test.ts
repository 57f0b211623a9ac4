// The data-parallel plan (server/engine/plan-workers.ts, with parallel.ts's split of a batch): how
// many threads share a batch, the cores left to their products, and what the free memory allows.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitRows } from '../../server/engine/parallel';
import { planWorkers } from '../../server/engine/plan-workers';

const GiB = 1024 ** 3;
// the ~100M Llama of the benchmarks, 256 tokens
const LLAMA_100M = { hidden: 768, layers: 12, heads: 12, vocab: 32000, baseParameters: 110e6, products: 'xnnpack' as const, trainable: 0, maxLength: 256 };

describe('data-parallel plan', () => {
  it('splits a batch into contiguous runs of rows, each knowing where it starts', () => {
    const batch = { inputIds: [[1], [2], [3], [4], [5]], labels: [[11], [12], [13], [14], [15]] };
    const shards = splitRows(batch, 3);
    assert.deepEqual(shards.map((s) => s.inputIds.flat()), [[1], [2, 3], [4, 5]]);
    assert.deepEqual(shards.map((s) => s.labels.flat()), [[11], [12, 13], [14, 15]]);
    assert.deepEqual(shards.map((s) => s.firstSequence), [0, 1, 3]);
    assert.equal(splitRows(batch, 8).length, 5, 'never an empty shard');
  });

  it('auto: one thread per core, at most one per row of the batch', () => {
    const plan = planWorkers('auto', 'wasm', { batch: 4, checkpointing: 'auto', memory: null }, { cores: 16, freeBytes: 64 * GiB, bundled: true });
    assert.equal(plan.count, 4);
    assert.match(plan.reason ?? '', /^4 threads share each batch \(training\.workers: auto, 16 cores, batch_size 4\)$/);
    assert.deepEqual(planWorkers('auto', 'wasm', { batch: 16, checkpointing: 'auto', memory: null }, { cores: 1, freeBytes: 64 * GiB, bundled: true }), { count: 1, productThreads: 1 });
    const fromSource = planWorkers('auto', 'wasm', { batch: 16, checkpointing: 'auto', memory: null }, { cores: 8, freeBytes: 64 * GiB, bundled: false, mlas: true });
    assert.deepEqual(fromSource, { count: 1, productThreads: 8, reason: 'one thread computes each batch (training.workers: auto, 8 cores, batch_size 16); its products on 8 cores' }, 'run from source: no worker to start');
  });

  it("gives the cores the threads leave to their products, where they run on MLAS", () => {
    const machine = { cores: 8, freeBytes: 64 * GiB, bundled: true, mlas: true };
    const three = planWorkers('auto', 'wasm', { batch: 3, checkpointing: 'auto', memory: null }, machine);
    assert.deepEqual([three.count, three.productThreads], [3, 2]);
    assert.match(three.reason ?? '', /^3 threads share each batch \(training\.workers: auto, 8 cores, batch_size 3\); each thread's products on 2 cores$/);
    assert.equal(planWorkers('auto', 'wasm', { batch: 1, checkpointing: 'auto', memory: null }, machine).productThreads, 8);
    assert.equal(planWorkers('auto', 'wasm', { batch: 1, checkpointing: 'auto', memory: null }, { ...machine, mlas: false }).productThreads, 1, 'XNNPACK multiplies on one thread');
    assert.equal(planWorkers('auto', 'cpu', { batch: 1, checkpointing: 'auto', memory: null }, machine).productThreads, 1, 'the cpu backend does not use MLAS');
    const tight = planWorkers('auto', 'wasm', { batch: 8, checkpointing: 'auto', memory: LLAMA_100M }, { ...machine, freeBytes: 6 * GiB });
    assert.equal(tight.productThreads, Math.floor(8 / tight.count), 'what the memory leaves');
  });

  it('auto: no more threads than the free memory holds, each with its own model and shard, and says so', () => {
    const run = { batch: 8, checkpointing: 'auto' as const, memory: LLAMA_100M };
    assert.equal(planWorkers('auto', 'wasm', run, { cores: 8, freeBytes: 64 * GiB, bundled: true }).count, 8);
    const tight = planWorkers('auto', 'wasm', run, { cores: 8, freeBytes: 6 * GiB, bundled: true });
    assert.ok(tight.count > 1 && tight.count < 8, `${tight.count}`);
    assert.match(tight.reason ?? '', /^\d threads share each batch \(training\.workers: auto, 8 cores, batch_size 8; 8 would need an estimated \d+\.\d GiB, more than 75% of the 6\.0 GiB free\)$/);
  });

  it('a number is taken as it is, up to the rows; a GPU backend computes the whole batch and says a number is not used', () => {
    assert.equal(planWorkers(3, 'cpu', { batch: 8, checkpointing: false, memory: LLAMA_100M }, { cores: 2, freeBytes: GiB, bundled: true }).count, 3);
    assert.equal(planWorkers(6, 'wasm', { batch: 2, checkpointing: false, memory: null }, { cores: 8, freeBytes: 64 * GiB, bundled: true }).count, 2);
    assert.deepEqual(planWorkers('auto', 'webgpu', { batch: 8, checkpointing: 'auto', memory: null }, { cores: 8, freeBytes: 64 * GiB, bundled: true }), { count: 1, productThreads: 1 });
    const named = planWorkers(4, 'tensorflow', { batch: 8, checkpointing: 'auto', memory: null }, { cores: 8, freeBytes: 64 * GiB, bundled: true });
    assert.equal(named.count, 1);
    assert.match(named.reason ?? '', /training\.workers 4 not used: .*tensorflow computes the whole batch on its device/);
  });
});
