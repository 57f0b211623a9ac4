// A failure the GPU reports on the side (WebGPU's uncaptured errors) must stop the run at the next
// read of values, with what happened and what is kept, instead of training on the garbage a failed
// kernel leaves behind. Simulated here on wasm: the report is what the webgpu device listener makes.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { type BackendChoice } from '../../protocol/backends';
import { GpuError, reportGpuError, throwIfGpuFailed } from '../../kernels/backends/gpu-errors';
import type { Adapter } from '../../kernels/adapter/linear';
import { takeValues } from '../../kernels/backends/read';
import { resolveConfigPaths } from '../../server/config/load';
import { configSchema } from '../../server/config/schema';
import { RunDirectory } from '../../server/engine/runs';
import { train } from '../../server/engine/train';
import type { TokenBatch } from '../../server/models/model';
import { TOY_VOCAB, ToyModel, toyTokenizer } from '../helpers/toy-model';

/** A model on whose `from`-th training forward pass the GPU reports `message`. */
class FailingModel extends ToyModel {
  private count = 0;
  constructor(
    private readonly from: number,
    private readonly message: string,
  ) {
    super(TOY_VOCAB, 16);
  }
  override logits(inputIds: TokenBatch, adapters: ReadonlyMap<string, Adapter>, options: { training: boolean; dropoutSeed?: number }): tf.Tensor3D {
    if (options.training && ++this.count === this.from) reportGpuError(this.message);
    return super.logits(inputIds, adapters, options);
  }
}

describe('errors the GPU reports on the side', () => {
  let dir: string;
  let backend: BackendChoice;
  before(async () => {
    backend = await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-gpu-error-'));
    await writeFile(join(dir, 'train.jsonl'), Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `q${i}`, completion: 'a' })).join('\n'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the next read of values throws them all, once, and disposes the tensor', async () => {
    reportGpuError('Buffer size (1099511627776) exceeds the max buffer size limit (268435456).\n - While calling [Device].CreateBuffer');
    reportGpuError('Out of memory');
    const t = tf.scalar(1);
    await assert.rejects(takeValues(t), (error: unknown) => {
      assert.ok(error instanceof GpuError);
      assert.equal(error.message, 'the GPU reported 2 errors; the first: Buffer size (1099511627776) exceeds the max buffer size limit (268435456).');
      assert.ok(error.outOfMemory);
      return true;
    });
    assert.ok(t.isDisposed);
    assert.doesNotThrow(() => throwIfGpuFailed());
    assert.equal((await takeValues(tf.scalar(2)))[0], 2);
  });

  for (const [what, message, advice] of [
    ['an invalid shader', 'The number of storage buffers (85) in the Compute stage exceeds the maximum per-stage limit (8).', false],
    ['running out of GPU memory', 'Out of memory while allocating a buffer', true],
  ] as const) {
    it(`${what} stops training with the message and keeps the last checkpoint`, async () => {
      const config = resolveConfigPaths(
        configSchema.parse({
          model: './toy', method: 'moslora', r: 4, alpha: 8, target_modules: ['proj', 'head'],
          data: { train: 'train.jsonl', max_length: 16 },
          training: { max_steps: 6, batch_size: 4, gradient_accumulation: 1, warmup_steps: 1, log_interval: 1, eval_interval: 100, checkpoint_interval: 2, mixer_interval: 100 },
          output: { runs_dir: 'runs', run_name: what.replaceAll(' ', '-') },
        }),
        join(dir, 'gpu.moslora.yaml'),
      );
      const runDir = join(dir, 'runs', what.replaceAll(' ', '-'));
      await assert.rejects(train({ config, model: new FailingModel(3, message), tokenizer: toyTokenizer, backend, runDir, resume: false }), (error: Error) => {
        assert.match(error.message, /gpu\.moslora\.yaml: training stopped at step 3: the GPU reported an error; the first: /);
        assert.ok(error.message.includes(message), error.message);
        assert.equal(/To fit: set training\.gradient_checkpointing: true; or lower training\.batch_size/.test(error.message), advice);
        assert.match(error.message, /The checkpoint of step 2 is kept in /);
        return true;
      });
      assert.deepEqual(await new RunDirectory(runDir).checkpointSteps(), [2]);
    });
  }
});
