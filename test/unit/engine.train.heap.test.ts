// Training when the wasm heap runs out (server/engine/train.ts over kernels/backends/wasm-kernels.ts):
// the allocation fails cleanly and the run stops saying what to change, its last checkpoint kept.
// Its own file: these tests grow the process's wasm heap to about 2.3 GiB, for good.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { type BackendChoice } from '../../protocol/backends';
import type { Adapter } from '../../kernels/adapter/linear';
import { WasmHeapExhausted } from '../../kernels/backends/wasm-kernels';
import { resolveConfigPaths } from '../../server/config/load';
import { configSchema } from '../../server/config/schema';
import { RunDirectory } from '../../server/engine/runs';
import { train } from '../../server/engine/train';
import type { TokenBatch } from '../../server/models/model';
import { TOY_VOCAB, ToyModel, toyTokenizer } from '../helpers/toy-model';

const HALF_HEAP = 600_000_000; // float32 elements: 2.3 GiB; two of them do not fit in 4 GiB

/** A model whose forward pass, from its `from`-th call on, also needs a tensor the heap cannot hold. */
class GreedyModel extends ToyModel {
  private count = 0;
  constructor(private readonly from: number) {
    super(TOY_VOCAB, 16);
  }
  override logits(inputIds: TokenBatch, adapters: ReadonlyMap<string, Adapter>, options: { training: boolean; dropoutSeed?: number }): tf.Tensor3D {
    if (options.training && ++this.count >= this.from) tf.tidy(() => tf.fill([HALF_HEAP], 1));
    return super.logits(inputIds, adapters, options);
  }
}

describe('the wasm heap running out', () => {
  let dir: string;
  let backend: BackendChoice;
  let ballast: tf.Tensor;
  before(async () => {
    backend = await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-heap-'));
    ballast = tf.fill([HALF_HEAP], 1);
  });
  after(async () => {
    ballast.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('throws WasmHeapExhausted for a tensor that does not fit, and the backend goes on working', () => {
    assert.throws(() => tf.fill([HALF_HEAP], 2), (error: unknown) => error instanceof WasmHeapExhausted && /no room for another 2289 MiB tensor/.test(error.message));
    assert.equal(tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0], 3);
    assert.equal(ballast.dataSync()[0], 1, 'the tensor at the start of the heap was not overwritten');
  });

  it('stops training with what to change, keeping the last checkpoint', async () => {
    const rows = Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `q${i}`, completion: 'a' })).join('\n');
    await writeFile(join(dir, 'train.jsonl'), rows);
    const config = resolveConfigPaths(
      configSchema.parse({
        model: './toy', method: 'moslora', r: 4, alpha: 8, target_modules: ['proj', 'head'],
        data: { train: 'train.jsonl', max_length: 16 },
        training: { max_steps: 6, batch_size: 4, gradient_accumulation: 1, warmup_steps: 1, log_interval: 1, eval_interval: 100, checkpoint_interval: 2, mixer_interval: 100 },
        output: { runs_dir: 'runs', run_name: 'heap' },
      }),
      join(dir, 'heap.moslora.yaml'),
    );
    const runDir = join(dir, 'runs', 'heap');
    const model = new GreedyModel(3);
    const variables = () => Object.keys(tf.engine().state.registeredVariables).length;
    const before = variables();
    await assert.rejects(
      train({ config, model, tokenizer: toyTokenizer, backend, runDir, resume: false }),
      (error: Error) => {
        assert.match(error.message, /heap\.moslora\.yaml: training stopped at step 3: the wasm backend ran out of its 4 GiB heap \(training\.batch_size 4 × data\.max_length 16\)/);
        assert.match(error.message, /To fit: set training\.gradient_checkpointing: true; or lower training\.batch_size/);
        assert.match(error.message, /The checkpoint of step 2 is kept in /);
        return true;
      },
    );
    assert.deepEqual(await new RunDirectory(runDir).checkpointSteps(), [2]);
    assert.equal(variables(), before, 'the module still works, so the run frees its adapter and optimizer variables');
  });
});
