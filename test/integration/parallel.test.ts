// Data-parallel training (server/engine/parallel.ts): the built CLI splits each micro-batch across
// worker threads, and must give the curve and the adapter that one thread gives, same seed and
// dropout; a worker that cannot load or fails mid-run stops the run with what happened.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { selectBackend } from '../../kernels/backends/backend';
import { SafetensorsFile } from '../../server/formats/safetensors';
import { ShardWorkers } from '../../server/engine/parallel';
import { trainRecords } from '../helpers/run-records';
import { SHARD_PARAMS, SHARD_WORKER, shardInit } from '../helpers/shard-workers';
import { TINY_MODEL } from '../helpers/tiny-models';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const EXAMPLES = join(ROOT, 'examples');

let dir: string;

/**
 * Trains `steps` steps of MoSLoRA on the tiny model with `workers` threads (or continues the run
 * in `resume` to that step); stderr, the train records, the summary and the adapter.
 */
async function train(workers: number, steps = 4, resume?: string) {
  const name = `workers-${workers}-${steps}`;
  const config = join(dir, `${name}.moslora.yaml`);
  await writeFile(config, [
    `model: ${join(EXAMPLES, 'tiny-model')}`, 'method: moslora', 'r: 8', 'alpha: 16', 'dropout: 0.1',
    'target_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]',
    'data:', `  train: ${join(EXAMPLES, 'tiny-task', 'train.jsonl')}`, `  eval: ${join(EXAMPLES, 'tiny-task', 'eval-mc.jsonl')}`, '  max_length: 32',
    'training:', `  max_steps: ${steps}`, '  batch_size: 5', '  gradient_accumulation: 2', '  learning_rate: 3.0e-3', '  warmup_steps: 0', '  schedule: constant',
    '  seed: 7', `  workers: ${workers}`, '  log_interval: 1', '  eval_interval: 4', '  checkpoint_interval: 4', '  mixer_interval: 4',
    'output:', `  runs_dir: ${dir}`, `  run_name: ${name}`,
  ].join('\n'));
  const { stderr } = await promisify(execFile)(process.execPath, [CLI, 'train', config, '--backend', 'wasm', ...(resume ? ['--resume', resume] : [])], { maxBuffer: 64 * 1024 * 1024 });
  const runDir = resume ?? join(dir, name);
  const records = await trainRecords(runDir);
  const summary = JSON.parse(await readFile(join(runDir, 'summary.json'), 'utf8')) as { threads: number; state: string; evalLoss: number; accuracy: number };
  const file = await SafetensorsFile.open(join(runDir, 'adapter', 'adapter_model.safetensors'));
  const adapter = new Map<string, Float32Array>();
  try {
    for (const tensor of file.tensors.keys()) adapter.set(tensor, await file.readFloat32(tensor));
  } finally {
    await file.close();
  }
  return { stderr, records, summary, adapter };
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));

function assertSameAdapter(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string): void {
  assert.equal(b.size, a.size);
  for (const [name, values] of a) {
    const other = b.get(name)!;
    const diff = Math.max(...values.map((v, i) => Math.abs(v - other[i]!)));
    assert.ok(diff < 1e-5, `${name}: ${what} differ by ${diff}`);
  }
}

let oneThread: Awaited<ReturnType<typeof train>>;

describe('data-parallel training across worker threads', { skip: existsSync(CLI) ? false : 'dist/cli.js is missing: run `npm run build` first' }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-parallel-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('3 threads (rows split 1 / 2 / 2) follow the one-thread curve, evaluate alike and train the same adapter', async () => {
    const one = (oneThread = await train(1));
    const three = await train(3);
    assert.match(three.stderr, /3 threads share each batch \(training\.workers: 3, batch_size 5\)/);
    assert.deepEqual([one.summary.threads, three.summary.threads], [1, 3]);
    assert.deepEqual(three.records.map((r) => r.step), [1, 2, 3, 4]);
    one.records.forEach((r, i) => {
      const other = three.records[i]!;
      assert.ok(relative(r.loss, other.loss) < 1e-5, `step ${r.step}: loss ${r.loss} vs ${other.loss}`);
      assert.ok(relative(r.grad_norm, other.grad_norm) < 1e-4, `step ${r.step}: grad norm ${r.grad_norm} vs ${other.grad_norm}`);
    });
    assert.ok(relative(one.records[0]!.loss, one.records[3]!.loss) > 1e-3, 'the curve moves');
    assert.ok(relative(one.summary.evalLoss, three.summary.evalLoss) < 1e-5, `eval loss ${one.summary.evalLoss} vs ${three.summary.evalLoss}`);
    assert.equal(typeof one.summary.accuracy, 'number');
    assert.equal(three.summary.accuracy, one.summary.accuracy);
    assertSameAdapter(one.adapter, three.adapter, 'one thread and three');
  });

  it('a run started on 3 threads resumes on 1 and ends where one thread all along does', async () => {
    const half = await train(3, 2);
    assert.equal(half.summary.threads, 3);
    const resumed = await train(1, 4, join(dir, 'workers-3-2'));
    assert.equal(resumed.summary.threads, 1);
    assert.deepEqual(resumed.records.map((r) => r.step), [1, 2, 3, 4]);
    resumed.records.forEach((r, i) => assert.ok(relative(r.loss, oneThread.records[i]!.loss) < 1e-5, `step ${r.step}: ${r.loss} vs ${oneThread.records[i]!.loss}`));
    assertSameAdapter(oneThread.adapter, resumed.adapter, 'resumed and one-thread adapters');
  });
});

describe('data-parallel workers that fail, and closing them', { skip: existsSync(SHARD_WORKER) ? false : 'dist/shard-worker.js is missing: run `npm run build` first' }, () => {
  const init = (modelDir: string) => shardInit(modelDir, 'cpu');
  before(async () => {
    await selectBackend('cpu');
  });

  it('a worker that cannot load the model says which worker and why', async () => {
    const missing = join(tmpdir(), 'moslora-no-such-model');
    await assert.rejects(ShardWorkers.start(2, init(missing), SHARD_WORKER), (error: Error) => {
      assert.equal(error.name, 'ShardWorkerError');
      assert.match(error.message, /^data-parallel worker [12] of 2: .*moslora-no-such-model/);
      return true;
    });
  });

  it('a worker that fails fails the step it was asked for and every later one', async () => {
    const workers = await ShardWorkers.start(1, init(TINY_MODEL), SHARD_WORKER);
    try {
      const shard = { inputIds: [[1, 2, 3]], labels: [[1, 2, 3]], firstSequence: 1 };
      const step = { dropoutSeed: 1, checkpoint: false };
      workers.setParams(new Float32Array(SHARD_PARAMS));
      assert.equal((await workers.scores([shard]))[0]!.length, 1, 'it works with the values of A, B and the mixer');
      workers.setParams(new Float32Array(3));
      await assert.rejects(workers.gradients([shard], step), /^ShardWorkerError: data-parallel worker 1 of 1: /);
      await assert.rejects(workers.scores([shard]), /data-parallel worker 1 of 1/);
    } finally {
      await workers.close();
    }
  });

  it('closing the workers while they load or compute ends them, and not the process', async () => {
    // Worker.terminate in one of onnxruntime's native calls aborts the process (a Napi::Error at
    // teardown); a process that survives six rounds of it ends with the rounds it did.
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'close-shard-workers.ts'), '6'], { cwd: ROOT });
    assert.deepEqual(JSON.parse(stdout), { rounds: 6 });
  });
});
